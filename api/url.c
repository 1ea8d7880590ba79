/* Percent-decoding; see url.h. */
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hex_value(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

int url_decode(const char *text, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '%') {
            int hi = i + 2 < len ? hex_value(text[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(text[i + 2]) : -1;
            if (lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (is_control(c))
            return -1;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

int url_parse_query(const char *query, struct _u_map *map, char *msg, size_t msg_len)
{
    size_t size = strlen(query) + 1;
    char *key = malloc(size), *value = malloc(size);
    int rc = 0;
    if (!key || !value) {
        snprintf(msg, msg_len, "out of memory");
        rc = -1;
    }
    for (const char *p = query; rc == 0 && *p;) {
        size_t len = strcspn(p, "&");
        size_t key_len = strcspn(p, "=&");
        const char *v = key_len < len ? p + key_len + 1 : p + len;
        size_t value_len = (size_t)(p + len - v);
        if (len > 0) {
            if (url_decode(p, key_len, key) < 0) {
                snprintf(msg, msg_len, "a query parameter's name holds a bad %%-escape or a control character");
                rc = -1;
            } else if (url_decode(v, value_len, value) < 0) {
                snprintf(msg, msg_len, "%.64s: a bad %%-escape or a control character", key);
                rc = -1;
            } else if (u_map_has_key(map, key)) {
                snprintf(msg, msg_len, "%.64s: given more than once", key);
                rc = -1;
            } else {
                u_map_put(map, key, value);
            }
        }
        p += len;
        if (*p == '&')
            p++;
    }
    free(key);
    free(value);
    return rc;
}
