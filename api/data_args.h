/* Text forms of a statement's parameters for the data layer's files (data.h):
 * times as RFC 3339, numbers exactly, NULL for a filter that is off. */
#ifndef EIE_DATA_ARGS_H
#define EIE_DATA_ARGS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "data.h"
#include "timefmt.h"

#define DATA_MAX_ARGS 8

typedef struct data_args {
    const char *values[DATA_MAX_ARGS];
    char text[DATA_MAX_ARGS][TIMEFMT_RFC3339_LEN + 8];
    int n;
} data_args;

void data_arg_text(data_args *a, const char *value); /* NULL: SQL NULL */
void data_arg_time(data_args *a, int64_t ms);
void data_arg_double(data_args *a, double v); /* NAN: SQL NULL */
void data_arg_long(data_args *a, long long v);
void data_arg_count(data_args *a, long long v); /* negative: SQL NULL (a filter off) */

/* data_query with a's parameters. */
PGresult *data_run(api_context *ctx, struct _u_response *resp, const char *what, const char *sql,
                   const data_args *a);

#endif
