/* Binary COPY rows; see copy_rows.h. The format is described in PostgreSQL's
 * documentation of COPY ("Binary Format"): a signature and two 32-bit words,
 * then per row a 16-bit field count and per field a 32-bit length and the
 * value in the type's send format (big-endian), then a 16-bit -1. */
#include "copy_rows.h"

#include <string.h>

#include "reading_sql.h"

/* timestamptz is sent as microseconds since 2000-01-01 00:00:00 UTC. */
#define PG_EPOCH_MS 946684800000LL

void copy_rows_statement(strbuf *out, const char *table, reading_kind kind)
{
    strbuf_printf(out, "COPY %s (", table);
    reading_sql_columns(out, kind, "{}", ", ", 0);
    strbuf_printf(out, ") FROM STDIN (FORMAT binary)");
}

static void put_be(strbuf *out, uint64_t v, int bytes)
{
    char b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (char)(v >> (8 * (bytes - 1 - i)));
    strbuf_append(out, b, (size_t)bytes);
}

static void field_text(strbuf *out, const char *s)
{
    size_t len = strlen(s);
    put_be(out, len, 4);
    strbuf_append(out, s, len);
}

/* Text, or SQL NULL for "". */
static void field_optional_text(strbuf *out, const char *s)
{
    if (*s)
        field_text(out, s);
    else
        put_be(out, 0xffffffffu, 4); /* length -1 */
}

static void field_double(strbuf *out, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_be(out, 8, 4);
    put_be(out, bits, 8);
}

static void field_time(strbuf *out, int64_t ms)
{
    put_be(out, 8, 4);
    put_be(out, (uint64_t)((ms - PG_EPOCH_MS) * 1000), 8);
}

void copy_rows_begin(strbuf *out)
{
    strbuf_append(out, "PGCOPY\n\377\r\n\0", 11);
    put_be(out, 0, 4); /* flags: no OIDs */
    put_be(out, 0, 4); /* header extension length */
}

void copy_rows_append(strbuf *out, const reading *r)
{
    strbuf_reserve(out, 128);
    size_t n;
    const reading_field *fields = reading_fields(r->kind, &n);
    put_be(out, n, 2);
    for (const reading_field *f = fields; f < fields + n; f++) {
        const void *v = (const char *)r + f->offset;
        switch (f->type) {
        case FIELD_ID:
            field_text(out, v);
            break;
        case FIELD_OPT_ID:
            field_optional_text(out, v);
            break;
        case FIELD_DOUBLE:
            field_double(out, *(const double *)v);
            break;
        case FIELD_TIME:
            field_time(out, *(const int64_t *)v);
            break;
        }
    }
}

void copy_rows_end(strbuf *out)
{
    put_be(out, 0xffff, 2);
}
