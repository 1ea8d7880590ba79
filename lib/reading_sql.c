/* Column lists for SQL; see reading_sql.h. */
#include "reading_sql.h"

#include <string.h>

void reading_sql_columns(strbuf *out, reading_kind kind, const char *tmpl, const char *sep,
                         int skip_device)
{
    size_t n;
    const reading_field *fields = reading_fields(kind, &n);
    for (size_t i = skip_device ? 1 : 0; i < n; i++) {
        if (i > (skip_device ? 1u : 0u))
            strbuf_printf(out, "%s", sep);
        for (const char *t = tmpl; *t;) {
            const char *mark = strstr(t, "{}");
            size_t len = mark ? (size_t)(mark - t) : strlen(t);
            strbuf_append(out, t, len);
            t += len;
            if (mark) {
                strbuf_printf(out, "%s", fields[i].column);
                t += 2;
            }
        }
    }
}

const char *reading_sql_time_column(reading_kind kind)
{
    size_t n;
    const reading_field *f = reading_fields(kind, &n);
    while (f->type != FIELD_TIME)
        f++;
    return f->column;
}
