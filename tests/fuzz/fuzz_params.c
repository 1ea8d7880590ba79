/* Fuzzes the query-parameter parsers as the routes call them. The input's
 * lines are the values of the parameters below, in that order (an empty line
 * leaves that one out), as ulfius hands them over: URL-decoded strings.
 * Whatever comes in, a parser either accepts a value within the bounds it was
 * given or fails with a message that names the parameter. */
#include "fuzz.h"
#include "params.h"

#define MINUTE_MS 60000LL
#define DAY_MS (1440 * MINUTE_MS)

static const char *const names[] = {"window",   "from",  "to",       "step",      "staleFor",
                                    "socBelow", "limit", "charging", "vehicleId", "meterId"};
#define N_NAMES (sizeof names / sizeof names[0])

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static void check_failure(const char *msg, const char *name)
{
    FUZZ_CHECK(strnlen(msg, PARAM_MSG_LEN) < PARAM_MSG_LEN && strstr(msg, name) != NULL);
}

static void parse_all(const struct _u_request *req)
{
    char msg[PARAM_MSG_LEN];
    param_window w;
    /* The analytics and fleet routes' window: 15 minutes to 30 days. */
    if (param_window_get(req, DAY_MS, 15 * MINUTE_MS, 30 * DAY_MS, &w, msg) == 0)
        FUZZ_CHECK(w.from_ms < w.to_ms && w.to_ms - w.from_ms <= 30 * DAY_MS &&
                   w.label[0] != '\0');
    else
        FUZZ_CHECK(msg[0] != '\0');

    int64_t step = -1;
    if (param_duration(req, "step", MINUTE_MS, 30 * DAY_MS, &step, msg) == 0)
        FUZZ_CHECK(step == -1 || (step >= MINUTE_MS && step <= 30 * DAY_MS));
    else
        check_failure(msg, "step");

    int64_t stale = -1;
    if (param_duration(req, "staleFor", MINUTE_MS, 3650 * DAY_MS, &stale, msg) == 0)
        FUZZ_CHECK(stale == -1 || (stale >= MINUTE_MS && stale <= 3650 * DAY_MS));
    else
        check_failure(msg, "staleFor");

    double soc = -1;
    bool present;
    if (param_double(req, "socBelow", 0, 100, &soc, &present, msg) == 0)
        FUZZ_CHECK(!present || (soc >= 0 && soc <= 100));
    else
        check_failure(msg, "socBelow");

    long limit = 100;
    if (param_long(req, "limit", 1, 1000, &limit, msg) == 0)
        FUZZ_CHECK(limit >= 1 && limit <= 1000);
    else
        check_failure(msg, "limit");

    bool charging = false;
    if (param_bool(req, "charging", &charging, &present, msg) < 0)
        check_failure(msg, "charging");

    int64_t from;
    if (param_time(req, "from", &from, &present, msg) < 0)
        check_failure(msg, "from");

    for (size_t i = N_NAMES - 2; i < N_NAMES; i++) {
        const char *id;
        if (param_device_id(req, names[i], &id, msg) == 0)
            FUZZ_CHECK(strlen(id) >= 1 && strlen(id) <= 64);
        else
            check_failure(msg, names[i]);
    }
}

/* A duration as the API prints it reads back as the same duration. */
static void check_duration_text(struct _u_request *req, int64_t minutes)
{
    char text[24], msg[PARAM_MSG_LEN];
    int64_t ms = minutes * MINUTE_MS, back = 0;
    param_format_duration(ms, text, sizeof text);
    u_map_put(req->map_url, "d", text);
    FUZZ_CHECK(param_duration(req, "d", MINUTE_MS, INT64_MAX, &back, msg) == 0 && back == ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct _u_request req;
    if (ulfius_init_request(&req) != U_OK)
        abort();
    char *text = fuzz_cstring(data, size), *line = text;
    for (size_t i = 0; i < N_NAMES && line; i++) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (*line)
            u_map_put(req.map_url, names[i], line);
        line = nl ? nl + 1 : NULL;
    }
    parse_all(&req);
    if (size >= 4) {
        uint32_t minutes;
        memcpy(&minutes, data, sizeof minutes);
        check_duration_text(&req, 1 + minutes % 999999999); /* 9 digits, as parsed */
    }
    free(text);
    ulfius_clean_request(&req);
    return 0;
}
