/* Strict percent-decoding of URL paths and query strings. A value that would
 * hold a NUL or another control character after decoding is refused, never
 * cut short: C strings would silently end at the NUL, and the part after it
 * would be lost. */
#ifndef EIE_URL_H
#define EIE_URL_H

#include <stddef.h>
#include <ulfius.h>

/* Decodes len bytes of text into out (at least len + 1 bytes; '+' stays '+',
 * as in a path). -1 on a malformed escape or a control character (bytes 0 to
 * 31 and 127), decoded or not. */
int url_decode(const char *text, size_t len, char *out);

/* Fills map with the parameters of a query string (after '?'). -1 with a
 * message in msg (size msg_len) naming the parameter on a bad escape, a
 * control character or a parameter given twice. */
int url_parse_query(const char *query, struct _u_map *map, char *msg, size_t msg_len);

#endif
