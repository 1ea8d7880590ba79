/* Export formats; see export_format.h. */
#include "export_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "params.h"

/* The media types served, the preferred first: on a tie of quality in the
 * Accept header, the earlier wins. */
static const struct media {
    const char *type; /* as matched, lower case */
    export_format format;
    const char *content_type; /* as answered */
} media[] = {
    {"text/csv", EXPORT_CSV, "text/csv; charset=utf-8; header=present"},
    {"application/x-ndjson", EXPORT_JSONL, "application/x-ndjson"},
    {"application/jsonl", EXPORT_JSONL, "application/jsonl"},
};
#define N_MEDIA (sizeof media / sizeof media[0])

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* How closely a media range (text/csv, a main type with a star, or stars alone) of length len
 * matches type: 3 exactly, 2 by its main type, 1 as a wildcard, 0 not. */
static int specificity(const char *range, size_t len, const char *type)
{
    size_t main_len = strcspn(type, "/");
    if (len == strlen(type) && strncasecmp(range, type, len) == 0)
        return 3;
    if (len == main_len + 2 && strncasecmp(range, type, main_len + 1) == 0 &&
        range[main_len + 1] == '*')
        return 2;
    if (len == 3 && strncmp(range, "*/*", 3) == 0)
        return 1;
    return 0;
}

/* The quality (RFC 9110, 12.5.1) the Accept header gives each served type:
 * that of the most specific range matching it, 0 when none does. */
static void accept_qualities(const char *accept, double q[N_MEDIA])
{
    int best[N_MEDIA] = {0};
    for (size_t i = 0; i < N_MEDIA; i++)
        q[i] = 0;
    for (const char *p = accept; *p;) {
        p = skip_space(p);
        size_t len = strcspn(p, ";,");
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        const char *range = p;
        double quality = 1;
        p += strcspn(p, ";,");
        while (*p == ';') { /* parameters: only q matters */
            p = skip_space(p + 1);
            if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                char *end;
                quality = strtod(p + 2, &end);
                if (end == p + 2 || quality < 0 || quality > 1)
                    quality = 0; /* a range with a malformed q admits nothing */
            }
            p += strcspn(p, ";,");
        }
        if (*p == ',')
            p++;
        for (size_t i = 0; i < N_MEDIA; i++) {
            int s = specificity(range, len, media[i].type);
            if (s > best[i]) {
                best[i] = s;
                q[i] = quality;
            }
        }
    }
}

int export_format_choose(const struct _u_request *req, export_choice *out, unsigned *status,
                         char *msg)
{
    const char *format = u_map_get(req->map_url, "format");
    if (format) {
        if (strcmp(format, "csv") == 0 || strcmp(format, "jsonl") == 0) {
            *out = (export_choice){.format = format[0] == 'c' ? EXPORT_CSV : EXPORT_JSONL,
                                   .content_type = media[format[0] == 'c' ? 0 : 1].content_type};
            return 0;
        }
        *status = 400;
        snprintf(msg, PARAM_MSG_LEN, "format: expected csv or jsonl");
        return -1;
    }
    const char *accept = u_map_get_case(req->map_header, "Accept");
    if (!accept || !*skip_space(accept)) {
        *out = (export_choice){.format = EXPORT_CSV, .content_type = media[0].content_type};
        return 0;
    }
    double q[N_MEDIA];
    accept_qualities(accept, q);
    size_t chosen = 0;
    for (size_t i = 1; i < N_MEDIA; i++)
        if (q[i] > q[chosen])
            chosen = i;
    if (q[chosen] <= 0) {
        *status = 406;
        snprintf(msg, PARAM_MSG_LEN,
                 "Accept: an export is text/csv, application/x-ndjson or application/jsonl "
                 "(or give format=csv|jsonl)");
        return -1;
    }
    *out = (export_choice){.format = media[chosen].format,
                           .content_type = media[chosen].content_type};
    return 0;
}

const char *export_format_extension(export_format f)
{
    return f == EXPORT_CSV ? "csv" : "jsonl";
}

static void append_select(export_format f, const export_column *columns, size_t n_columns,
                          const char *rest, strbuf *out)
{
    strbuf_puts(out, "SELECT ");
    for (size_t i = 0; i < n_columns; i++) {
        const char *sql = f == EXPORT_CSV && columns[i].csv_sql ? columns[i].csv_sql : columns[i].sql;
        strbuf_printf(out, "%s%s AS \"%s\"", i ? ", " : "", sql, columns[i].name);
    }
    strbuf_printf(out, " %s", rest);
}

void export_format_copy_sql(export_format f, const export_column *columns, size_t n_columns,
                            const char *rest, strbuf *out)
{
    if (f == EXPORT_CSV) {
        strbuf_puts(out, "COPY (");
        append_select(f, columns, n_columns, rest, out);
        strbuf_puts(out, ") TO STDOUT WITH (FORMAT csv, HEADER)");
        return;
    }
    /* JSON Lines through COPY too, one object a row: PostgreSQL writes the
     * JSON (row_to_json keeps the columns' order and names), and one path
     * streams both formats. COPY's text format then escapes each backslash
     * (the only character of JSON text it escapes: JSON has no raw control
     * characters), which the stream undoes (export_stream.c). The rows keep
     * the inner query's order: a projection over an ordered subquery is not
     * sorted again. */
    strbuf_puts(out, "COPY (SELECT row_to_json(r) FROM (");
    append_select(f, columns, n_columns, rest, out);
    strbuf_puts(out, ") r) TO STDOUT");
}
