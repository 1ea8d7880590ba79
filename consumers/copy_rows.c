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

/* Writes v's low bytes, big-endian, at p; returns the end. */
static char *put_be(char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        *p++ = (char)(v >> (8 * (bytes - 1 - i)));
    return p;
}

static void append_be(strbuf *out, uint64_t v, int bytes)
{
    char b[8];
    strbuf_append(out, b, (size_t)(put_be(b, v, bytes) - b));
}

static char *field_text(char *p, const char *s)
{
    size_t len = strlen(s);
    p = put_be(p, len, 4);
    memcpy(p, s, len);
    return p + len;
}

static char *field_8_bytes(char *p, uint64_t v)
{
    return put_be(put_be(p, 8, 4), v, 8);
}

void copy_rows_begin(strbuf *out)
{
    strbuf_append(out, "PGCOPY\n\377\r\n\0", 11);
    append_be(out, 0, 4); /* flags: no OIDs */
    append_be(out, 0, 4); /* header extension length */
}

char *copy_rows_put_field(char *p, reading_field_type type, const void *v)
{
    switch (type) {
    case FIELD_OPT_ID:
        if (!*(const char *)v) /* "": SQL NULL */
            return put_be(p, 0xffffffffu, 4); /* length -1 */
        /* fall through */
    case FIELD_ID:
        return field_text(p, v);
    case FIELD_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, v, sizeof bits);
        return field_8_bytes(p, bits);
    }
    case FIELD_TIME: {
        int64_t ms = *(const int64_t *)v;
        return field_8_bytes(p, (uint64_t)((ms - PG_EPOCH_MS) * 1000));
    }
    }
    return p;
}

/* A row is written in place, after one reservation for its longest (every
 * field an id of READING_ID_MAX bytes): the COPY of a batch formats hundreds
 * of thousands of them, and a call per value was a tenth of a replay's CPU. */
void copy_rows_append(strbuf *out, const reading *r)
{
    size_t n;
    const reading_field *fields = reading_fields(r->kind, &n);
    strbuf_reserve(out, 2 + n * COPY_ROWS_FIELD_MAX);
    char *p = put_be(out->data + out->len, n, 2);
    for (const reading_field *f = fields; f < fields + n; f++)
        p = copy_rows_put_field(p, f->type, (const char *)r + f->offset);
    out->len = (size_t)(p - out->data);
    out->data[out->len] = '\0';
}

void copy_rows_end(strbuf *out)
{
    append_be(out, 0xffff, 2);
}
