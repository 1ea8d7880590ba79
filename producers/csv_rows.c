/* CSV rows as JSON objects; see csv_rows.h. */
#include "csv_rows.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reading.h"
#include "strbuf.h"

/* Splits one line into fields; returns the count, or -1 with err set. */
static int split(const char *line, size_t len, strbuf **fields, size_t *n, eie_err *err)
{
    size_t cap = 8, count = 0, i = 0;
    strbuf *out = calloc(cap, sizeof *out);
    if (!out)
        abort();
    for (;;) {
        if (count == cap) {
            out = realloc(out, 2 * cap * sizeof *out);
            if (!out)
                abort();
            memset(out + cap, 0, cap * sizeof *out);
            cap *= 2;
        }
        strbuf *f = &out[count++];
        strbuf_reset(f);
        strbuf_reserve(f, 0);
        if (i < len && line[i] == '"') {
            for (i++;; i++) {
                if (i >= len) {
                    eie_err_set(err, "field %zu: unterminated quote", count);
                    goto fail;
                }
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        strbuf_putc(f, '"');
                        i++;
                        continue;
                    }
                    i++;
                    break;
                }
                strbuf_putc(f, line[i]);
            }
            if (i < len && line[i] != ',') {
                eie_err_set(err, "field %zu: text after the closing quote", count);
                goto fail;
            }
        } else {
            size_t start = i;
            while (i < len && line[i] != ',')
                i++;
            strbuf_append(f, line + start, i - start);
        }
        if (i >= len)
            break;
        i++; /* the comma */
    }
    *fields = out;
    *n = count;
    return 0;
fail:
    for (size_t k = 0; k < cap; k++)
        strbuf_free(&out[k]);
    free(out);
    return -1;
}

static void free_fields(strbuf *fields, size_t n)
{
    for (size_t i = 0; i < n; i++)
        strbuf_free(&fields[i]);
    free(fields);
}

int csv_header_parse(csv_header *h, const char *line, size_t len, eie_err *err)
{
    strbuf *fields;
    size_t n;
    memset(h, 0, sizeof *h);
    if (split(line, len, &fields, &n, err) < 0)
        return -1;
    h->names = calloc(n, sizeof *h->names);
    if (!h->names)
        abort();
    h->n = n;
    for (size_t i = 0; i < n; i++) {
        h->names[i] = strdup(fields[i].data);
        /* Names become JSON keys, which jansson refuses unless they are
         * UTF-8: such a column would vanish from every row without a word. */
        json_t *key = json_string(h->names[i]);
        json_decref(key);
        if (!h->names[i][0] || !key) {
            eie_err_set(err, "header: column %zu %s", i + 1,
                        h->names[i][0] ? "is not valid UTF-8" : "has no name");
            free_fields(fields, n);
            csv_header_free(h);
            return -1;
        }
    }
    free_fields(fields, n);
    return 0;
}

void csv_header_free(csv_header *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->names[i]);
    free(h->names);
    memset(h, 0, sizeof *h);
}

/* The type of the field of that name in any kind's description (reading.h),
 * or -1 when no kind has one. */
static int field_type_named(const char *name)
{
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        size_t n;
        const reading_field *fields = reading_fields((reading_kind)k, &n);
        for (size_t i = 0; i < n; i++)
            if (strcmp(fields[i].name, name) == 0)
                return (int)fields[i].type;
    }
    return -1;
}

/* A number where the model wants one, epoch milliseconds for an all-digit time,
 * a string otherwise: the JSON rules then report anything that is wrong. */
static json_t *field_value(const char *name, const char *text)
{
    char *end;
    int type = field_type_named(name);
    if (type >= 0 && reading_field_optional((reading_field_type)type) && !*text)
        return json_null(); /* an empty cell: not given */
    if (type == FIELD_DOUBLE && *text) {
        errno = 0;
        double v = strtod(text, &end);
        if (!errno && *end == '\0' && !isspace((unsigned char)text[0]))
            return json_real(v);
    }
    if (type == FIELD_TIME && *text && strspn(text, "0123456789") == strlen(text)) {
        errno = 0;
        long long ms = strtoll(text, &end, 10);
        if (!errno)
            return json_integer(ms);
    }
    return json_string(text);
}

json_t *csv_row_to_json(const csv_header *h, const char *line, size_t len, eie_err *err)
{
    strbuf *fields;
    size_t n;
    if (split(line, len, &fields, &n, err) < 0)
        return NULL;
    if (n != h->n) {
        eie_err_set(err, "%zu fields where the header names %zu", n, h->n);
        free_fields(fields, n);
        return NULL;
    }
    json_t *obj = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *v = field_value(h->names[i], fields[i].data);
        if (!v) { /* json_string refuses invalid UTF-8 */
            eie_err_set(err, "%s: not valid UTF-8", h->names[i]);
            json_decref(obj);
            free_fields(fields, n);
            return NULL;
        }
        json_object_set_new(obj, h->names[i], v);
    }
    free_fields(fields, n);
    return obj;
}
