/* Bounds pre-check of Avro bodies; see codec_precheck.h. */
#include "codec_precheck.h"

#include <stdint.h>

int codec_read_varint(const unsigned char **p, const unsigned char *end, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return -1;
}

static int skip_value(avro_schema_t schema, const unsigned char **p, const unsigned char *end,
                      int depth)
{
    int64_t n;
    if (depth > 32)
        return -1;
    switch (avro_typeof(schema)) {
    case AVRO_NULL:
        return 0;
    case AVRO_BOOLEAN:
        if (*p >= end || **p > 1)
            return -1;
        (*p)++;
        return 0;
    case AVRO_INT32:
    case AVRO_INT64:
        return codec_read_varint(p, end, &n);
    case AVRO_FLOAT:
    case AVRO_DOUBLE: {
        size_t size = avro_typeof(schema) == AVRO_FLOAT ? 4 : 8;
        if ((size_t)(end - *p) < size)
            return -1;
        *p += size;
        return 0;
    }
    case AVRO_STRING:
    case AVRO_BYTES:
        if (codec_read_varint(p, end, &n) < 0 || n < 0 || n > end - *p)
            return -1;
        *p += n;
        return 0;
    case AVRO_FIXED: {
        int64_t size = avro_schema_fixed_size(schema);
        if (size > end - *p)
            return -1;
        *p += size;
        return 0;
    }
    case AVRO_ENUM:
        return codec_read_varint(p, end, &n) < 0 || n < 0 || n >= avro_schema_enum_number_of_symbols(schema)
                   ? -1
                   : 0;
    case AVRO_UNION:
        if (codec_read_varint(p, end, &n) < 0 || n < 0 || (size_t)n >= avro_schema_union_size(schema))
            return -1;
        return skip_value(avro_schema_union_branch(schema, (int)n), p, end, depth + 1);
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(schema); i++)
            if (skip_value(avro_schema_record_field_get_by_index(schema, (int)i), p, end,
                           depth + 1) < 0)
                return -1;
        return 0;
    case AVRO_ARRAY:
    case AVRO_MAP:
        for (;;) {
            if (codec_read_varint(p, end, &n) < 0)
                return -1;
            if (n == 0)
                return 0;
            if (n < 0) { /* a negative count is followed by the block's byte size */
                int64_t bytes;
                if (n == INT64_MIN || codec_read_varint(p, end, &bytes) < 0)
                    return -1;
                n = -n;
            }
            if (n > end - *p + 1) /* bounds the loop: only null items take no bytes */
                return -1;
            for (int64_t i = 0; i < n; i++) {
                int64_t key_len;
                if (avro_typeof(schema) == AVRO_MAP) { /* map keys are strings */
                    if (codec_read_varint(p, end, &key_len) < 0 || key_len < 0 || key_len > end - *p)
                        return -1;
                    *p += key_len;
                }
                avro_schema_t item = avro_typeof(schema) == AVRO_MAP
                                         ? avro_schema_map_values(schema)
                                         : avro_schema_array_items(schema);
                if (skip_value(item, p, end, depth + 1) < 0)
                    return -1;
            }
        }
    case AVRO_LINK:
        return skip_value(avro_schema_link_target(schema), p, end, depth + 1);
    default:
        return -1;
    }
}

int codec_skip_value(avro_schema_t schema, const unsigned char **p, const unsigned char *end,
                     int depth)
{
    return skip_value(schema, p, end, depth);
}

int codec_precheck(avro_schema_t schema, const void *body, size_t len, size_t *used)
{
    const unsigned char *start = body, *cursor = start;
    if (skip_value(schema, &cursor, start + len, 0) < 0)
        return -1;
    *used = (size_t)(cursor - start);
    return 0;
}
