/* Fuzzes the importer's CSV reader: the first line of the input is the header,
 * each further line a row, cut and trimmed as eie-produce does (at '\n', then
 * trailing '\r' and '\n' removed), each row turned into its JSON object and
 * through the reading rules like every importer line. */
#include "csv_rows.h"
#include "fuzz.h"
#include "reading.h"
#include "timefmt.h"

#define MAX_ROWS 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

/* The next line of [*p, end) without its line ending; advances *p. */
static const char *next_line(const char **p, const char *end, size_t *len)
{
    const char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));
    *p = nl ? nl + 1 : end;
    size_t n = (size_t)((nl ? nl : end) - line);
    while (n && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        n--;
    *len = n;
    return line;
}

static void check_row(const csv_header *h, const char *line, size_t len, int64_t now)
{
    eie_err err;
    err.msg[0] = '\0';
    json_t *obj = csv_row_to_json(h, line, len, &err);
    if (!obj) {
        FUZZ_CHECK(err.msg[0] != '\0');
        return;
    }
    /* One member per column, fewer only when the header repeats a name. */
    FUZZ_CHECK(json_is_object(obj) && json_object_size(obj) >= 1 && json_object_size(obj) <= h->n);
    reading r;
    if (reading_from_json(obj, -1, &r, &err) == 0)
        (void)reading_validate(&r, now, &err);
    json_decref(obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly the input, so that ASan sees any read past its end. */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    const char *p = copy, *end = copy + size;
    size_t len;
    const char *line = next_line(&p, end, &len);
    csv_header h;
    eie_err err;
    if (csv_header_parse(&h, line, len, &err) == 0) {
        FUZZ_CHECK(h.n >= 1);
        int64_t now = timefmt_now_ms();
        for (int i = 0; i < MAX_ROWS && p < end; i++) {
            line = next_line(&p, end, &len);
            check_row(&h, line, len, now);
        }
        csv_header_free(&h);
    } else {
        FUZZ_CHECK(err.msg[0] != '\0');
    }
    free(copy);
    return 0;
}
