/* A JSON writer for the hot routes' responses: straight into a buffer, in the
 * order written, without building jansson objects first (which, with their
 * dump, took a fifth of the API's CPU on the performance route). Numbers print
 * as respond_json prints them (15 significant digits, 34.2 not
 * 34.200000000000003). */
#ifndef EIE_JSONW_H
#define EIE_JSONW_H

#include <stdbool.h>
#include <stdint.h>

#include "strbuf.h"

#define JSONW_DEPTH 8

typedef struct jsonw {
    strbuf out;
    int depth;
    bool first[JSONW_DEPTH]; /* nothing written yet in the open container */
} jsonw;

void jsonw_init(jsonw *w);
void jsonw_free(jsonw *w);

/* Each value follows its key in an object; in an array, or for the outermost
 * value, key is NULL. */
void jsonw_begin(jsonw *w, const char *key); /* an object */
void jsonw_end(jsonw *w);
void jsonw_begin_array(jsonw *w, const char *key);
void jsonw_end_array(jsonw *w);
void jsonw_string(jsonw *w, const char *key, const char *value); /* NULL: null */
void jsonw_real(jsonw *w, const char *key, double value);        /* not finite: null */
void jsonw_int(jsonw *w, const char *key, long long value);
void jsonw_bool(jsonw *w, const char *key, bool value);
void jsonw_null(jsonw *w, const char *key);
void jsonw_time(jsonw *w, const char *key, int64_t ms); /* RFC 3339 */

#endif
