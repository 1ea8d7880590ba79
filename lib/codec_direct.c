/* One-pass decoding of readings; see codec_direct.h. */
#include "codec_direct.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec_precheck.h"

int codec_direct_plan(codec_direct *plan, avro_schema_t schema, reading_kind kind,
                      const int *field_index, const int *reader_has)
{
    memset(plan, 0, sizeof *plan);
    if (avro_typeof(schema) != AVRO_RECORD)
        return -1;
    plan->kind = kind;
    plan->n_steps = avro_schema_record_size(schema);
    plan->steps = calloc(plan->n_steps ? plan->n_steps : 1, sizeof *plan->steps);
    if (!plan->steps)
        return -1;
    for (size_t j = 0; j < plan->n_steps; j++)
        plan->steps[j].schema = avro_schema_record_field_get_by_index(schema, (int)j);
    size_t n_fields;
    const reading_field *fields = reading_fields(kind, &n_fields);
    if (n_fields > CODEC_MAX_FIELDS) {
        codec_direct_free(plan);
        return -1;
    }
    for (size_t i = 0; i < n_fields; i++)
        if (reader_has[i] && field_index[i] >= 0 && (size_t)field_index[i] < plan->n_steps)
            plan->steps[field_index[i]].target = &fields[i];
    return 0;
}

void codec_direct_free(codec_direct *plan)
{
    free(plan->steps);
    plan->steps = NULL;
}

/* What a field's value broke, reported after the whole body has been found
 * to fit (as the generic path checks the body first, then the fields). */
enum { VALUE_OK, VALUE_TOO_LONG, VALUE_NUL };

static int read_id(const unsigned char **p, const unsigned char *end, char *dst, int *problem)
{
    int64_t len;
    if (codec_read_varint(p, end, &len) < 0 || len < 0 || len > end - *p)
        return -1;
    if (len > READING_ID_MAX)
        *problem = VALUE_TOO_LONG;
    else if (memchr(*p, '\0', (size_t)len))
        *problem = VALUE_NUL;
    else {
        memcpy(dst, *p, (size_t)len);
        dst[len] = '\0';
    }
    *p += len;
    return 0;
}

static int read_value(const codec_direct_step *step, const unsigned char **p,
                      const unsigned char *end, reading *out, int *problem)
{
    const reading_field *f = step->target;
    char *dst = (char *)out + f->offset;
    switch (f->type) {
    case FIELD_OPT_ID: {
        int64_t branch; /* ["null", "string"] */
        if (codec_read_varint(p, end, &branch) < 0 || branch < 0 || branch > 1)
            return -1;
        return branch == 0 ? 0 : read_id(p, end, dst, problem);
    }
    case FIELD_ID:
        return read_id(p, end, dst, problem);
    case FIELD_DOUBLE: {
        if (end - *p < 8)
            return -1;
        uint64_t bits = 0; /* little-endian IEEE 754 */
        for (int b = 7; b >= 0; b--)
            bits = bits << 8 | (*p)[b];
        memcpy(dst, &bits, sizeof bits);
        *p += 8;
        return 0;
    }
    case FIELD_TIME: {
        int64_t v;
        if (codec_read_varint(p, end, &v) < 0)
            return -1;
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    }
    return -1;
}

codec_status codec_direct_decode(const codec_direct *plan, const unsigned char *body, size_t len,
                                 const char *file, reading *out, eie_err *err)
{
    memset(out, 0, sizeof *out);
    out->kind = plan->kind;
    const unsigned char *p = body, *end = body + len;
    int problems[CODEC_MAX_FIELDS] = {0}; /* by reading field */
    size_t n_fields;
    const reading_field *fields = reading_fields(plan->kind, &n_fields);
    for (size_t j = 0; j < plan->n_steps; j++) {
        const codec_direct_step *step = &plan->steps[j];
        int rc = step->target
                     ? read_value(step, &p, end, out, &problems[step->target - fields])
                     : codec_skip_value(step->schema, &p, end, 1);
        if (rc < 0) {
            eie_err_set(err, "body does not decode as %s", file);
            return CODEC_ERR_BODY;
        }
    }
    if (p != end) {
        eie_err_set(err, "%zu bytes after the end of the %s body", (size_t)(end - p), file);
        return CODEC_ERR_BODY;
    }
    for (size_t i = 0; i < n_fields; i++) {
        if (problems[i] == VALUE_OK)
            continue;
        if (problems[i] == VALUE_TOO_LONG)
            eie_err_set(err, "%s: longer than %d bytes", fields[i].name, READING_ID_MAX);
        else
            eie_err_set(err, "%s: contains NUL", fields[i].name);
        eie_err_prefix(err, "%s", file);
        return CODEC_ERR_BODY;
    }
    return CODEC_OK;
}
