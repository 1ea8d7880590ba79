/* Fuzzes the timestamp text of the API and the readings: RFC 3339 parsing
 * (query parameters, JSON and CSV timestamps) and the two formatters. A time
 * that parses and lies within RFC 3339's years must format to text that
 * parses back to the same millisecond; any int64 must format without harm,
 * since the formatters also print what the database holds. */
#include "fuzz.h"
#include "timefmt.h"

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z */
#define FIRST_MS (-62167219200000LL)
#define LAST_MS 253402300799999LL

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static void format_any(int64_t ms)
{
    char rfc[TIMEFMT_RFC3339_LEN], pg[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(ms, rfc);
    timefmt_format_pg(ms, pg);
    FUZZ_CHECK(strlen(rfc) < sizeof rfc && strlen(pg) < sizeof pg);
    int64_t day = timefmt_day(ms);
    FUZZ_CHECK(day <= ms / 86400000 && day >= ms / 86400000 - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= sizeof(int64_t)) {
        int64_t raw;
        memcpy(&raw, data, sizeof raw);
        format_any(raw);
    }
    char *text = fuzz_cstring(data, size);
    int64_t ms;
    if (timefmt_parse_rfc3339(text, &ms) == 0) {
        format_any(ms);
        if (ms >= FIRST_MS && ms <= LAST_MS) {
            char again[TIMEFMT_RFC3339_LEN];
            int64_t back;
            timefmt_format_rfc3339(ms, again);
            FUZZ_CHECK(timefmt_parse_rfc3339(again, &back) == 0 && back == ms);
        }
    }
    free(text);
    return 0;
}
