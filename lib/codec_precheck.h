/* A bounds check of an Avro binary body before avro-c reads it.
 *
 * avro-c trusts length prefixes: it allocates what a string, a bytes value or
 * an array's block count claims before checking that the input holds it, so
 * a few hostile bytes on a topic could make a consumer allocate gigabytes or
 * read past the message. The codec (codec.h) therefore first walks every body
 * against its writer schema here, with each length checked against the bytes
 * that remain, and hands avro-c only bodies that fit. */
#ifndef EIE_CODEC_PRECHECK_H
#define EIE_CODEC_PRECHECK_H

#include <avro.h>
#include <stddef.h>
#include <stdint.h>

/* Walks one value of schema from the start of body (len bytes). Returns 0 with
 * *used set to the bytes the value takes (bytes after it are the caller's to
 * judge), or -1 when the value does not fit in len bytes or breaks the schema
 * (a union branch, an enum symbol or a boolean out of range, nesting deeper
 * than 32). */
int codec_precheck(avro_schema_t schema, const void *body, size_t len, size_t *used);

/* The same walk from *p, which moves past the value, for a value depth levels
 * down (a record's field: 1): 0, or -1 as above. */
int codec_skip_value(avro_schema_t schema, const unsigned char **p, const unsigned char *end,
                     int depth);

/* A zigzag varint (an Avro int or long) at *p, which moves past it: 0, or -1
 * when it runs past end or over 10 bytes. */
int codec_read_varint(const unsigned char **p, const unsigned char *end, int64_t *out);

#endif
