/* JSON responses with one stable shape for errors:
 *   {"error": {"status": 404, "code": "not_found", "message": "..."}}
 * Numbers are printed with 15 significant digits, the precision a double holds
 * exactly, so 34.2 stays 34.2 rather than showing binary noise. */
#ifndef EIE_RESPOND_H
#define EIE_RESPOND_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <ulfius.h>

#include "jsonw.h"

/* Sends body (and takes its reference). */
int respond_json(struct _u_response *resp, unsigned int status, json_t *body);

/* Sends what w wrote (and frees it). */
int respond_jsonw(struct _u_response *resp, unsigned int status, jsonw *w);

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
int respond_error(struct _u_response *resp, unsigned int status, const char *code,
                  const char *fmt, ...);

/* Conversions for the JSON of a response: a field of a query's result as a
 * double, or as a JSON number (null for SQL NULL); a time as an RFC 3339
 * string. */
double pg_field_double(const PGresult *res, int row, int col);
json_t *pg_field_json_number(const PGresult *res, int row, int col);
json_t *json_rfc3339(int64_t ms);

#endif
