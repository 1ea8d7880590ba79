/* Fuzzes the cursor of GET /v1/vehicles: the nextCursor a page ends with is
 * the last vehicle id, and the client sends it back as ?cursor=. The service
 * must take back exactly the ids it can give (1 to 64 bytes of UTF-8 without
 * control characters), checked here against a decoder written apart from the
 * model's, and a cursor it accepts must survive the JSON it goes out in. */
#include <jansson.h>

#include "fuzz.h"
#include "jsonw.h"
#include "params.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

/* The reference: decode code points and judge each by its value. */
static int is_valid_id(const unsigned char *s, size_t len)
{
    if (len < 1 || len > 64)
        return 0;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i], cp, n;
        if (c < 0x80)
            cp = c, n = 1;
        else if ((c & 0xE0) == 0xC0)
            cp = c & 0x1F, n = 2;
        else if ((c & 0xF0) == 0xE0)
            cp = c & 0x0F, n = 3;
        else if ((c & 0xF8) == 0xF0)
            cp = c & 0x07, n = 4;
        else
            return 0;
        if (i + n > len)
            return 0;
        for (unsigned k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        static const unsigned min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_for_length[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0; /* overlong, beyond Unicode, or a surrogate */
        if (cp < 0x20 || cp == 0x7F)
            return 0;
        i += n;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memchr(data, '\0', size))
        return 0; /* ulfius hands parameters over as C strings */
    char *cursor = fuzz_cstring(data, size);
    struct _u_request req;
    if (ulfius_init_request(&req) != U_OK)
        abort();
    u_map_put(req.map_url, "cursor", cursor);
    const char *got = NULL;
    char msg[PARAM_MSG_LEN];
    int accepted = param_device_id(&req, "cursor", &got, msg) == 0;
    FUZZ_CHECK(accepted == is_valid_id(data, size));
    if (accepted) {
        FUZZ_CHECK(strcmp(got, cursor) == 0);
        jsonw w;
        jsonw_init(&w);
        jsonw_begin(&w, NULL);
        jsonw_string(&w, "nextCursor", got);
        jsonw_end(&w);
        json_error_t jerr;
        json_t *page = json_loadb(w.out.data, w.out.len, 0, &jerr);
        FUZZ_CHECK(page != NULL);
        FUZZ_CHECK(strcmp(json_string_value(json_object_get(page, "nextCursor")), cursor) == 0);
        json_decref(page);
        jsonw_free(&w);
    }
    ulfius_clean_request(&req);
    free(cursor);
    return 0;
}
