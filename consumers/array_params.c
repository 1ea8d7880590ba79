/* Readings as binary array parameters; see array_params.h. An array's binary
 * form (PostgreSQL's array_recv): dimensions (1), a flag for NULLs, the
 * element type, then per dimension its length and lower bound, then each
 * element as a 32-bit length (-1: NULL) and its send form, all big-endian:
 * the elements are COPY's fields (copy_rows_put_field). */
#include "array_params.h"

#include "copy_rows.h"

#include <stdint.h>
#include <string.h>

/* PostgreSQL's type oids (pg_type.dat): the element types and their arrays. */
#define OID_TEXT 25
#define OID_FLOAT8 701
#define OID_TIMESTAMPTZ 1184
#define OID_TEXT_ARRAY 1009
#define OID_FLOAT8_ARRAY 1022
#define OID_TIMESTAMPTZ_ARRAY 1185
/* Where the element count goes in the header, patched by array_params_end. */
#define HEADER_COUNT_AT 12

static void put_be(strbuf *out, uint64_t v, int bytes)
{
    char b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (char)(v >> (8 * (bytes - 1 - i)));
    strbuf_append(out, b, (size_t)bytes);
}

static Oid element_oid(reading_field_type type)
{
    return type == FIELD_DOUBLE ? OID_FLOAT8 : type == FIELD_TIME ? OID_TIMESTAMPTZ : OID_TEXT;
}

void array_params_unnest(strbuf *sql, reading_kind kind)
{
    size_t n;
    const reading_field *fields = reading_fields(kind, &n);
    strbuf_puts(sql, "unnest(");
    for (size_t i = 0; i < n; i++) {
        reading_field_type t = fields[i].type;
        strbuf_printf(sql, "%s$%zu::%s[]", i ? ", " : "", i + 1,
                      t == FIELD_DOUBLE ? "float8" : t == FIELD_TIME ? "timestamptz" : "text");
    }
    strbuf_putc(sql, ')');
}

void array_params_begin(array_params *p, reading_kind kind)
{
    size_t n;
    const reading_field *fields = reading_fields(kind, &n);
    p->kind = kind;
    p->n_params = (int)n;
    p->n_rows = 0;
    for (size_t i = 0; i < n; i++) {
        strbuf *a = &p->arrays[i];
        strbuf_reset(a);
        put_be(a, 1, 4); /* dimensions */
        put_be(a, fields[i].type == FIELD_OPT_ID, 4); /* may hold NULLs */
        put_be(a, element_oid(fields[i].type), 4);
        put_be(a, 0, 4); /* the count, at HEADER_COUNT_AT */
        put_be(a, 1, 4); /* lower bound */
    }
}

void array_params_add(array_params *p, const reading *r)
{
    size_t n;
    const reading_field *fields = reading_fields(p->kind, &n);
    for (size_t i = 0; i < n; i++) {
        strbuf *a = &p->arrays[i];
        strbuf_reserve(a, COPY_ROWS_FIELD_MAX);
        char *end = copy_rows_put_field(a->data + a->len, fields[i].type,
                                        (const char *)r + fields[i].offset);
        a->len = (size_t)(end - a->data);
        a->data[a->len] = '\0';
    }
    p->n_rows++;
}

void array_params_end(array_params *p)
{
    size_t n;
    const reading_field *fields = reading_fields(p->kind, &n);
    for (size_t i = 0; i < n; i++) {
        strbuf *a = &p->arrays[i];
        for (int b = 0; b < 4; b++)
            a->data[HEADER_COUNT_AT + b] = (char)(p->n_rows >> (8 * (3 - b)));
        p->values[i] = a->data;
        p->lengths[i] = (int)a->len;
        p->formats[i] = 1;
        p->types[i] = fields[i].type == FIELD_DOUBLE ? OID_FLOAT8_ARRAY
                      : fields[i].type == FIELD_TIME ? OID_TIMESTAMPTZ_ARRAY
                                                     : OID_TEXT_ARRAY;
    }
}

void array_params_free(array_params *p)
{
    for (int i = 0; i < ARRAY_PARAMS_MAX; i++)
        strbuf_free(&p->arrays[i]);
}
