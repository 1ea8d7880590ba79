/* Fuzzes the JSON reading parser of POST /v1/ingest/meter and /vehicle and
 * the importer's JSON Lines: a body (one reading or an array of them) through
 * jansson, reading_from_json with each kind the routes give and with the kind
 * left to be told from the fields, and reading_validate. A reading that passes must
 * come back unchanged through reading_to_json, the form the importer and the
 * dead-letter tools print. */
#include <jansson.h>

#include "fuzz.h"
#include "reading.h"
#include "timefmt.h"

#define MAX_ITEMS 64 /* an array is parsed whole; a few items show every path */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static void check_round_trip(const reading *r)
{
    json_t *obj = reading_to_json(r);
    FUZZ_CHECK(obj != NULL);
    reading again;
    eie_err err;
    FUZZ_CHECK(reading_from_json(obj, (int)r->kind, &again, &err) == 0);
    json_decref(obj);
    /* Timestamps go out as RFC 3339 with milliseconds, numbers as doubles:
     * nothing is lost for a valid reading. */
    FUZZ_CHECK(strcmp(reading_key(&again), reading_key(r)) == 0);
    FUZZ_CHECK(reading_time_ms(&again) == reading_time_ms(r));
    FUZZ_CHECK(memcmp(&again, r, sizeof again) == 0);
}

static void parse_item(const json_t *item, int64_t now)
{
    for (int kind = -1; kind < READING_KIND_COUNT; kind++) {
        reading r;
        eie_err err;
        err.msg[0] = '\0';
        if (reading_from_json(item, kind, &r, &err) < 0) {
            FUZZ_CHECK(err.msg[0] != '\0');
            continue;
        }
        FUZZ_CHECK(kind < 0 || r.kind == (reading_kind)kind);
        if (reading_validate(&r, now, &err) < 0) {
            FUZZ_CHECK(err.msg[0] != '\0');
            continue;
        }
        check_round_trip(&r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, size, 0, &jerr);
    if (!body)
        return 0;
    int64_t now = timefmt_now_ms();
    if (json_is_array(body)) {
        for (size_t i = 0; i < json_array_size(body) && i < MAX_ITEMS; i++)
            parse_item(json_array_get(body, i), now);
    } else {
        parse_item(body, now);
    }
    json_decref(body);
    return 0;
}
