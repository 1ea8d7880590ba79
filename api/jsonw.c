/* JSON writer; see jsonw.h. */
#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "timefmt.h"

void jsonw_init(jsonw *w)
{
    memset(w, 0, sizeof *w);
}

void jsonw_free(jsonw *w)
{
    strbuf_free(&w->out);
}

static void put_string(strbuf *out, const char *s)
{
    strbuf_putc(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            strbuf_putc(out, '\\');
            strbuf_putc(out, (char)*p);
        } else if (*p < 0x20) {
            strbuf_printf(out, "\\u%04x", *p);
        } else {
            strbuf_putc(out, (char)*p);
        }
    }
    strbuf_putc(out, '"');
}

/* The separator before a value, and its key when it has one. */
static void put_key(jsonw *w, const char *key)
{
    if (w->depth > 0 && w->depth <= JSONW_DEPTH) {
        if (!w->first[w->depth - 1])
            strbuf_putc(&w->out, ',');
        w->first[w->depth - 1] = false;
    }
    if (key) {
        put_string(&w->out, key);
        strbuf_putc(&w->out, ':');
    }
}

static void open_container(jsonw *w, const char *key, char bracket)
{
    put_key(w, key);
    strbuf_putc(&w->out, bracket);
    if (w->depth < JSONW_DEPTH)
        w->first[w->depth] = true;
    w->depth++;
}

void jsonw_begin(jsonw *w, const char *key)
{
    open_container(w, key, '{');
}

void jsonw_end(jsonw *w)
{
    strbuf_putc(&w->out, '}');
    w->depth--;
}

void jsonw_begin_array(jsonw *w, const char *key)
{
    open_container(w, key, '[');
}

void jsonw_end_array(jsonw *w)
{
    strbuf_putc(&w->out, ']');
    w->depth--;
}

void jsonw_string(jsonw *w, const char *key, const char *value)
{
    put_key(w, key);
    if (value)
        put_string(&w->out, value);
    else
        strbuf_puts(&w->out, "null");
}

/* Most values here are readings with at most three decimals (86.3, 0.138,
 * 12880.041 seconds): when value is the double nearest to such a decimal,
 * below a billion, %.15g prints exactly that decimal (15 digits round-trip a
 * double), so the digits are written by hand, a fraction of printf's time.
 * Returns false for any other value. */
static bool put_short_real(strbuf *out, double value)
{
    double thousandths = nearbyint(value * 1000.0);
    if (value == 0 || !(fabs(value) < 1e9) || thousandths / 1000.0 != value)
        return false;
    long long t = (long long)fabs(thousandths);
    char text[24], *p = text + sizeof text;
    *--p = '\0';
    int frac = (int)(t % 1000);
    if (frac == 0) {
        *--p = '0'; /* as jansson: a real keeps a ".0" */
    } else {
        int digits = 3;
        for (; frac % 10 == 0; frac /= 10)
            digits--;
        for (int i = 0; i < digits; i++, frac /= 10)
            *--p = (char)('0' + frac % 10);
    }
    *--p = '.';
    long long whole = t / 1000;
    do {
        *--p = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole);
    if (value < 0)
        *--p = '-';
    strbuf_puts(out, p);
    return true;
}

/* As jansson prints a real with JSON_REAL_PRECISION(15): %.15g, with ".0"
 * added when that reads as an integer, and the exponent without '+' or
 * leading zeros. */
void jsonw_real(jsonw *w, const char *key, double value)
{
    put_key(w, key);
    if (!isfinite(value)) {
        strbuf_puts(&w->out, "null");
        return;
    }
    if (put_short_real(&w->out, value))
        return;
    char text[40];
    int n = snprintf(text, sizeof text - 2, "%.15g", value);
    char *e = strchr(text, 'e');
    if (e) {
        char *to = e + 1;
        const char *from = e + 1;
        if (*from == '+')
            from++;
        else if (*from == '-')
            *to++ = *from++;
        while (*from == '0' && from[1])
            from++;
        memmove(to, from, strlen(from) + 1);
    } else if (!strchr(text, '.')) {
        memcpy(text + n, ".0", 3);
    }
    strbuf_puts(&w->out, text);
}

void jsonw_int(jsonw *w, const char *key, long long value)
{
    put_key(w, key);
    strbuf_printf(&w->out, "%lld", value);
}

void jsonw_bool(jsonw *w, const char *key, bool value)
{
    put_key(w, key);
    strbuf_puts(&w->out, value ? "true" : "false");
}

void jsonw_null(jsonw *w, const char *key)
{
    put_key(w, key);
    strbuf_puts(&w->out, "null");
}

void jsonw_time(jsonw *w, const char *key, int64_t ms)
{
    char text[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(ms, text);
    jsonw_string(w, key, text);
}
