/* How a schema is named on the wire: its Parsing Canonical Form and the
 * CRC-64-AVRO (Rabin) fingerprint of that form, both as the Avro
 * specification defines them ("Parsing Canonical Form for Schemas",
 * "Schema Fingerprints"). The codec (codec.h) puts the fingerprint in front of
 * every message it writes and finds by it the version a message was written
 * with; any other Avro library computes the same numbers. */
#ifndef EIE_CODEC_FINGERPRINT_H
#define EIE_CODEC_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "strbuf.h"

/* Parsing Canonical Form of a schema given as JSON text, appended to out. */
int codec_canonical_form(const char *schema_json, strbuf *out, eie_err *err);

/* CRC-64-AVRO fingerprint of data (a canonical form). */
uint64_t codec_fingerprint64(const void *data, size_t len);

#endif
