/* Request parameters; see params.h. */
#include "params.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reading.h"
#include "timefmt.h"

#define MINUTE_MS 60000LL
#define HOUR_MS (60 * MINUTE_MS)
#define DAY_MS (24 * HOUR_MS)

static const char *query(const struct _u_request *req, const char *name)
{
    return u_map_get(req->map_url, name);
}

int param_device_id(const struct _u_request *req, const char *name, const char **out, char *msg)
{
    const char *v = query(req, name);
    reading probe;
    memset(&probe, 0, sizeof probe);
    probe.kind = READING_ASSIGNMENT;
    eie_err err;
    if (v && strlen(v) <= READING_ID_MAX) {
        /* The model's own id rules, through the assignment that carries two ids. */
        strcpy(probe.u.assignment.vehicle_id, v);
        strcpy(probe.u.assignment.meter_id, "x");
        probe.u.assignment.valid_from_ms = timefmt_now_ms();
        if (reading_validate(&probe, probe.u.assignment.valid_from_ms, &err) == 0) {
            *out = v;
            return 0;
        }
    }
    snprintf(msg, PARAM_MSG_LEN, "%s: expected 1 to %d bytes of UTF-8 without control characters",
             name, READING_ID_MAX);
    return -1;
}

static int parse_duration(const char *text, int64_t *ms)
{
    /* Digits without sign, space or leading zero, then the unit: the form the
     * document's pattern gives and responses echo. */
    size_t digits = strspn(text, "0123456789");
    if (digits == 0 || digits > 9 || text[0] == '0')
        return -1;
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno || end != text + digits || end[0] == '\0' || end[1] != '\0')
        return -1;
    int64_t unit = end[0] == 'm' ? MINUTE_MS : end[0] == 'h' ? HOUR_MS : end[0] == 'd' ? DAY_MS : 0;
    if (!unit || n > INT64_MAX / unit)
        return -1;
    *ms = n * unit;
    return 0;
}

void param_format_duration(int64_t ms, char *buf, size_t size)
{
    if (ms % DAY_MS == 0 && ms > DAY_MS) /* but one day reads as 24h */
        snprintf(buf, size, "%lldd", (long long)(ms / DAY_MS));
    else if (ms % HOUR_MS == 0)
        snprintf(buf, size, "%lldh", (long long)(ms / HOUR_MS));
    else
        snprintf(buf, size, "%lldm", (long long)(ms / MINUTE_MS));
}

int param_duration(const struct _u_request *req, const char *name, int64_t min_ms, int64_t max_ms,
                   int64_t *out_ms, char *msg)
{
    const char *v = query(req, name);
    if (!v)
        return 0;
    int64_t ms;
    if (parse_duration(v, &ms) < 0 || ms < min_ms || ms > max_ms) {
        char lo[24], hi[24];
        param_format_duration(min_ms, lo, sizeof lo);
        param_format_duration(max_ms, hi, sizeof hi);
        snprintf(msg, PARAM_MSG_LEN,
                 "%s: expected a duration from %s to %s, a number and m, h or d (such as 15m, 24h, 7d)",
                 name, lo, hi);
        return -1;
    }
    *out_ms = ms;
    return 0;
}

int param_double(const struct _u_request *req, const char *name, double lo, double hi, double *out,
                 bool *present, char *msg)
{
    const char *v = query(req, name);
    *present = v != NULL;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d) || d < lo || d > hi) {
        snprintf(msg, PARAM_MSG_LEN, "%s: expected a number from %g to %g", name, lo, hi);
        return -1;
    }
    *out = d;
    return 0;
}

int param_long(const struct _u_request *req, const char *name, long lo, long hi, long *out, char *msg)
{
    const char *v = query(req, name);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi) {
        snprintf(msg, PARAM_MSG_LEN, "%s: expected an integer from %ld to %ld", name, lo, hi);
        return -1;
    }
    *out = n;
    return 0;
}

int param_bool(const struct _u_request *req, const char *name, bool *out, bool *present, char *msg)
{
    const char *v = query(req, name);
    *present = v != NULL;
    if (!v)
        return 0;
    if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
        *out = v[0] == 't';
        return 0;
    }
    snprintf(msg, PARAM_MSG_LEN, "%s: expected true or false", name);
    return -1;
}

int param_time(const struct _u_request *req, const char *name, int64_t *out_ms, bool *present,
               char *msg)
{
    const char *v = query(req, name);
    *present = v != NULL;
    if (!v)
        return 0;
    if (timefmt_parse_rfc3339(v, out_ms) == 0 && *out_ms >= 0 && *out_ms < 253402300800000LL)
        return 0;
    snprintf(msg, PARAM_MSG_LEN, "%s: expected an RFC 3339 time such as 2026-02-09T13:08:00Z", name);
    return -1;
}

int param_window_get(const struct _u_request *req, int64_t def_ms, int64_t min_ms, int64_t max_ms,
                     param_window *out, char *msg)
{
    bool has_from, has_to;
    int64_t window_ms = def_ms;
    if (param_time(req, "from", &out->from_ms, &has_from, msg) < 0 ||
        param_time(req, "to", &out->to_ms, &has_to, msg) < 0)
        return -1;
    if (has_from || has_to) {
        char span[24];
        param_format_duration(max_ms, span, sizeof span);
        if (query(req, "window")) {
            snprintf(msg, PARAM_MSG_LEN, "window: give either window or from and to, not both");
            return -1;
        }
        if (!has_from || !has_to) {
            snprintf(msg, PARAM_MSG_LEN, "%s: from and to go together", has_from ? "to" : "from");
            return -1;
        }
        if (out->to_ms <= out->from_ms || out->to_ms - out->from_ms > max_ms) {
            snprintf(msg, PARAM_MSG_LEN, "to: must be after from, by at most %s", span);
            return -1;
        }
        snprintf(out->label, sizeof out->label, "custom");
        return 0;
    }
    if (param_duration(req, "window", min_ms, max_ms, &window_ms, msg) < 0)
        return -1;
    out->to_ms = timefmt_now_ms();
    out->from_ms = out->to_ms - window_ms;
    const char *given = query(req, "window");
    if (given)
        snprintf(out->label, sizeof out->label, "%s", given);
    else
        param_format_duration(window_ms, out->label, sizeof out->label);
    return 0;
}
