/* Decoding of a reading straight from its Avro body, in one pass.
 *
 * Every schema of a reading is a record of strings, optional strings,
 * doubles and longs. Read through avro-c's generic values, after the bounds
 * pre-check (codec_precheck.h), a message cost three passes and a call per
 * value: a fifth of a sink's CPU (perf of eie-replay). A plan made once per
 * writer schema says, field by field, where a value goes in struct reading,
 * or that it is skipped (a field the reader lacks, of any type); the decode
 * checks every length against the bytes left as it goes. The result, error
 * messages included, is that of the generic path (codec_decode_generic, which
 * fuzz_codec checks it against). */
#ifndef EIE_CODEC_DIRECT_H
#define EIE_CODEC_DIRECT_H

#include <avro.h>
#include <stddef.h>

#include "codec.h"
#include "reading.h"

/* The most fields a kind of reading may have (the codec refuses more). */
#define CODEC_MAX_FIELDS 8

typedef struct codec_direct_step {
    const reading_field *target; /* NULL: skipped */
    avro_schema_t schema;        /* the writer's field, for skipping */
} codec_direct_step;

typedef struct codec_direct {
    reading_kind kind;
    size_t n_steps; /* the writer's fields, in order */
    codec_direct_step *steps;
} codec_direct;

/* The plan of a record schema of kind: field_index[i] is where reading field
 * i is in the record (-1: absent), taken when reader_has[i]. Returns -1 (out
 * of memory, or not a record) and then the generic path is used. */
int codec_direct_plan(codec_direct *plan, avro_schema_t schema, reading_kind kind,
                      const int *field_index, const int *reader_has);
void codec_direct_free(codec_direct *plan);

/* Decodes body (len bytes) with the plan; file names the schema in errors. */
codec_status codec_direct_decode(const codec_direct *plan, const unsigned char *body, size_t len,
                                 const char *file, reading *out, eie_err *err);

#endif
