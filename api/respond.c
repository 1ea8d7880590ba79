/* JSON responses; see respond.h. */
#include "respond.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timefmt.h"

int respond_json(struct _u_response *resp, unsigned int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(body);
    if (!text) {
        ulfius_set_string_body_response(resp, 500, "{\"error\":{\"status\":500,\"code\":\"internal\","
                                                   "\"message\":\"cannot encode the response\"}}");
    } else {
        ulfius_set_string_body_response(resp, status, text);
        free(text);
    }
    u_map_put(resp->map_header, "Content-Type", "application/json");
    return U_CALLBACK_COMPLETE;
}

int respond_jsonw(struct _u_response *resp, unsigned int status, jsonw *w)
{
    ulfius_set_binary_body_response(resp, status, w->out.data, w->out.len);
    jsonw_free(w);
    u_map_put(resp->map_header, "Content-Type", "application/json");
    return U_CALLBACK_COMPLETE;
}

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
                 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n || (len == 2 && s[0] < 0xC2))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* A message may quote what a client sent, and be cut to fit: JSON needs
 * UTF-8, so a byte that does not start a whole character becomes '?'. */
static void make_utf8(char *message)
{
    unsigned char *s = (unsigned char *)message;
    size_t n = strlen(message);
    for (size_t i = 0; i < n;) {
        size_t len = utf8_sequence(s + i, n - i);
        if (len == 0) {
            s[i] = '?';
            len = 1;
        }
        i += len;
    }
}

int respond_error(struct _u_response *resp, unsigned int status, const char *code,
                  const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    make_utf8(message);
    return respond_json(resp, status,
                        json_pack("{s:{s:i, s:s, s:s}}", "error", "status", (int)status, "code",
                                  code, "message", message));
}

/* A real number, or JSON null when it is not finite (NaN has no JSON form). */
static json_t *respond_real_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

double pg_field_double(const PGresult *res, int row, int col)
{
    return strtod(PQgetvalue(res, row, col), NULL);
}

json_t *pg_field_json_number(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null()
                                      : respond_real_or_null(pg_field_double(res, row, col));
}

json_t *json_rfc3339(int64_t ms)
{
    char text[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(ms, text);
    return json_string(text);
}
