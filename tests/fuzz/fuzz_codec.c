/* Fuzzes codec_decode, the single-object Avro decoder every consumer runs on
 * every Kafka message: any bytes must give a status, never a crash, and a
 * message that decodes must encode and decode back to the same reading.
 * Decoded twice: by the newest reader and by the oldest one (every kind at
 * schema v1), so schema resolution in both directions is exercised; and each
 * time by the one-pass decoder and by avro-c's generic values, which must
 * agree. */
#include "codec.h"
#include "fuzz.h"

static codec *newest, *oldest;

/* Freed at exit: LeakSanitizer reports what avro-c keeps inside a live codec
 * as leaked (it does not see every pointer avro-c holds), while a freed codec
 * leaves nothing behind. */
static void free_codecs(void)
{
    codec_free(newest);
    codec_free(oldest);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    eie_err err;
    atexit(free_codecs);
    const int v1[READING_KIND_COUNT] = {1, 1, 1};
    newest = codec_new(&err);
    oldest = newest ? codec_new_versions(v1, &err) : NULL;
    if (!oldest) {
        fprintf(stderr, "fuzz_codec: %s\n", err.msg);
        abort();
    }
    return 0;
}

static void check_ids(const reading *r)
{
    /* Ids are NUL-terminated within their arrays (strnlen never reads past). */
    switch (r->kind) {
    case READING_METER:
        FUZZ_CHECK(strnlen(r->u.meter.meter_id, READING_ID_MAX + 1) <= READING_ID_MAX);
        break;
    case READING_VEHICLE:
        FUZZ_CHECK(strnlen(r->u.vehicle.vehicle_id, READING_ID_MAX + 1) <= READING_ID_MAX);
        FUZZ_CHECK(strnlen(r->u.vehicle.charger_id, READING_ID_MAX + 1) <= READING_ID_MAX);
        break;
    case READING_ASSIGNMENT:
        FUZZ_CHECK(strnlen(r->u.assignment.vehicle_id, READING_ID_MAX + 1) <= READING_ID_MAX);
        FUZZ_CHECK(strnlen(r->u.assignment.meter_id, READING_ID_MAX + 1) <= READING_ID_MAX);
        break;
    default:
        FUZZ_CHECK(!"a decoded reading has a known kind");
    }
}

static void decode_with(codec *c, const uint8_t *data, size_t size)
{
    reading r, again;
    eie_err err;
    codec_status st = codec_decode(c, data, size, &r, &err);
    FUZZ_CHECK(st == CODEC_OK || st == CODEC_ERR_FRAMING || st == CODEC_ERR_UNKNOWN_SCHEMA ||
               st == CODEC_ERR_BODY);
    /* The one-pass decoder gives what avro-c's generic values give: the same
     * status, the same message, the same reading. */
    reading generic;
    eie_err generic_err;
    FUZZ_CHECK(codec_decode_generic(c, data, size, &generic, &generic_err) == st);
    if (st != CODEC_OK)
        FUZZ_CHECK(strcmp(err.msg, generic_err.msg) == 0);
    else
        FUZZ_CHECK(memcmp(&r, &generic, sizeof r) == 0);
    if (st != CODEC_OK) {
        FUZZ_CHECK(err.msg[0] != '\0');
        return;
    }
    check_ids(&r);
    /* Whatever decodes, valid or not, survives the trip back: the dead-letter
     * and replay paths re-encode what they read. Both sides come out of the
     * decoder, which zeroes the reading first, so the bytes compare. */
    const void *out;
    size_t len;
    FUZZ_CHECK(codec_encode(c, &r, &out, &len, &err) == 0);
    FUZZ_CHECK(codec_decode(c, out, len, &again, &err) == CODEC_OK);
    FUZZ_CHECK(memcmp(&r, &again, sizeof r) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_with(newest, data, size);
    decode_with(oldest, data, size);
    return 0;
}
