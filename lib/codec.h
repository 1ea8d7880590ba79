/* The wire format of our topics: Avro single-object encoding (marker C3 01, the
 * 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's Parsing
 * Canonical Form, then the Avro binary body), so that any Avro library can read
 * and write them without a schema registry.
 *
 * Every schema version ever used lives in schemas/avro/<kind>.v<N>.avsc and is
 * compiled in; a message is decoded with the version its fingerprint names and
 * resolved (Avro schema resolution) to the newest version of its kind, so old
 * topics stay readable. Messages are written with the newest version.
 *
 * The fingerprints and canonical forms are codec_fingerprint.h's; every body
 * is bounds-checked (codec_precheck.h) before avro-c reads it.
 *
 * A codec holds avro-c values that it reuses between calls, so it is not
 * thread-safe: each thread uses its own. */
#ifndef EIE_CODEC_H
#define EIE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "codec_fingerprint.h"
#include "err.h"
#include "reading.h"
#include "strbuf.h"

#define CODEC_HEADER_LEN 10

typedef enum {
    CODEC_OK = 0,
    CODEC_ERR_FRAMING,        /* too short, or not the C3 01 marker */
    CODEC_ERR_UNKNOWN_SCHEMA, /* a fingerprint none of our schema versions has */
    CODEC_ERR_BODY,           /* the body does not decode with the schema it names */
} codec_status;

typedef struct codec codec;

codec *codec_new(eie_err *err);

/* A codec that reads and writes the given schema version of each kind
 * (version[kind]; 0 for the newest) instead of the newest: an older consumer
 * or producer, during a rolling upgrade or in tests of schema resolution. */
codec *codec_new_versions(const int version[READING_KIND_COUNT], eie_err *err);
void codec_free(codec *c);

/* Encodes r with the newest schema of its kind. *data points into the codec and
 * stays valid until the next call on it. */
int codec_encode(codec *c, const reading *r, const void **data, size_t *len, eie_err *err);

/* Decodes one message. On failure err says what was wrong. */
codec_status codec_decode(codec *c, const void *data, size_t len, reading *out, eie_err *err);

/* The same through avro-c's generic values instead of the one-pass decoder
 * (codec_direct.h): the reference that tests hold the decoder to. */
codec_status codec_decode_generic(codec *c, const void *data, size_t len, reading *out,
                                  eie_err *err);

/* The schema versions the codec knows, for tests and for tools that list them. */
typedef struct codec_schema_info {
    const char *file;  /* e.g. "vehicle_reading.v1.avsc" */
    reading_kind kind;
    int version;
    uint64_t fingerprint;
    const char *canonical_form;
} codec_schema_info;
size_t codec_schema_count(const codec *c);
const codec_schema_info *codec_schema_at(const codec *c, size_t i);

#endif
