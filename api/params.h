/* Parsing of path and query parameters, with the 400 message a client should
 * see. Each returns 0, or -1 with a message in msg naming the parameter. */
#ifndef EIE_PARAMS_H
#define EIE_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ulfius.h>

#define PARAM_MSG_LEN 256

/* A device id from the path: 1 to 64 bytes of UTF-8 without control characters. */
int param_device_id(const struct _u_request *req, const char *name, const char **out, char *msg);

/* "15m", "24h", "7d"; absent leaves *out_ms unchanged. */
int param_duration(const struct _u_request *req, const char *name, int64_t min_ms, int64_t max_ms,
                   int64_t *out_ms, char *msg);
/* A number within [lo, hi]; *present says whether it was given. */
int param_double(const struct _u_request *req, const char *name, double lo, double hi, double *out,
                 bool *present, char *msg);
int param_long(const struct _u_request *req, const char *name, long lo, long hi, long *out,
               char *msg);
int param_bool(const struct _u_request *req, const char *name, bool *out, bool *present, char *msg);
int param_time(const struct _u_request *req, const char *name, int64_t *out_ms, bool *present,
               char *msg);

/* The analysis window of a request: ?window=D (min..max, default def) or
 * ?from=&to= (RFC 3339, at most max apart). label is the window as given, or
 * "custom" for from/to. */
typedef struct param_window {
    int64_t from_ms, to_ms;
    char label[24];
} param_window;
int param_window_get(const struct _u_request *req, int64_t def_ms, int64_t min_ms, int64_t max_ms,
                     param_window *out, char *msg);

/* Formats a duration the way param_duration reads it: "90m", "24h", "7d". */
void param_format_duration(int64_t ms, char *buf, size_t size);

#endif
