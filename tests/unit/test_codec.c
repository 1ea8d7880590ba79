/* Unit tests of the Avro codec: canonical forms and fingerprints against the
 * vectors an independent implementation (fastavro) produced, decoding its
 * messages, round trips, and malformed messages. Needs no services. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "timefmt.h"

static const char *vectors_path;

typedef struct vector {
    char file[64];
    char canonical[1024];
    uint64_t fingerprint;
    unsigned char message[256];
    size_t message_len;
    char json[512];
} vector;

static size_t load_vectors(vector *out, size_t max)
{
    FILE *f = fopen(vectors_path, "r");
    assert_non_null(f);
    char line[4096];
    size_t n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *fields[5], *save = NULL, *p = line;
        int i = 0;
        for (char *tok; i < 5 && (tok = strtok_r(p, "\t", &save)); p = NULL)
            fields[i++] = tok;
        assert_int_equal(i, 5);
        vector *v = &out[n++];
        snprintf(v->file, sizeof v->file, "%s", fields[0]);
        snprintf(v->canonical, sizeof v->canonical, "%s", fields[1]);
        v->fingerprint = strtoull(fields[2], NULL, 16);
        size_t hex_len = strlen(fields[3]);
        v->message_len = hex_len / 2;
        for (size_t j = 0; j < v->message_len; j++) {
            unsigned int byte;
            sscanf(fields[3] + 2 * j, "%2x", &byte);
            v->message[j] = (unsigned char)byte;
        }
        snprintf(v->json, sizeof v->json, "%s", fields[4]);
    }
    fclose(f);
    return n;
}

static const codec_schema_info *find_schema(codec *c, const char *file)
{
    for (size_t i = 0; i < codec_schema_count(c); i++)
        if (strcmp(codec_schema_at(c, i)->file, file) == 0)
            return codec_schema_at(c, i);
    return NULL;
}

static int setup(void **state)
{
    eie_err err;
    codec *c = codec_new(&err);
    if (!c)
        fprintf(stderr, "codec_new: %s\n", err.msg);
    *state = c;
    return c ? 0 : -1;
}

static int teardown(void **state)
{
    codec_free(*state);
    return 0;
}

static void test_fingerprint_spec_values(void **state)
{
    /* The empty input gives the algorithm's initial value (Avro specification). */
    assert_true(codec_fingerprint64("", 0) == 0xc15d213aa4d7a795ULL);
    /* A primitive schema's canonical form is its name in quotes. */
    strbuf out = STRBUF_INIT;
    eie_err err;
    assert_int_equal(codec_canonical_form("{\"type\": \"int\", \"logicalType\": \"date\"}", &out, &err), 0);
    assert_string_equal(out.data, "\"int\"");
    strbuf_free(&out);
}

static void test_canonical_forms_match_fastavro(void **state)
{
    codec *c = *state;
    vector v[8];
    size_t n = load_vectors(v, 8);
    assert_true(n >= 3);
    for (size_t i = 0; i < n; i++) {
        const codec_schema_info *info = find_schema(c, v[i].file);
        assert_non_null(info);
        assert_string_equal(info->canonical_form, v[i].canonical);
        assert_true(info->fingerprint == v[i].fingerprint);
    }
}

static void test_canonical_form_rules(void **state)
{
    /* Namespaces fold into full names, attributes other than the parsing ones
     * go, nested named types inherit the enclosing namespace. */
    const char *schema =
        "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a.b\",\"doc\":\"x\",\"aliases\":[\"Q\"],"
        "\"fields\":[{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\",\"Y\"]},\"default\":\"X\"},"
        "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"c.F\",\"size\":4}},"
        "{\"name\":\"u\",\"type\":[\"null\",{\"type\":\"array\",\"items\":\"E\"}]},"
        "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"string\"}}}]}";
    strbuf out = STRBUF_INIT;
    eie_err err;
    assert_int_equal(codec_canonical_form(schema, &out, &err), 0);
    assert_string_equal(
        out.data,
        "{\"name\":\"a.b.R\",\"type\":\"record\",\"fields\":["
        "{\"name\":\"e\",\"type\":{\"name\":\"a.b.E\",\"type\":\"enum\",\"symbols\":[\"X\",\"Y\"]}},"
        "{\"name\":\"f\",\"type\":{\"name\":\"c.F\",\"type\":\"fixed\",\"size\":4}},"
        "{\"name\":\"u\",\"type\":[\"null\",{\"type\":\"array\",\"items\":\"a.b.E\"}]},"
        "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"string\"}}]}");
    strbuf_free(&out);
    assert_int_equal(codec_canonical_form("{not json", &out, &err), -1);
    strbuf_free(&out);
}

static void test_decodes_fastavro_messages(void **state)
{
    codec *c = *state;
    vector v[8];
    size_t n = load_vectors(v, 8);
    for (size_t i = 0; i < n; i++) {
        reading r;
        eie_err err;
        assert_int_equal(codec_decode(c, v[i].message, v[i].message_len, &r, &err), CODEC_OK);
        /* Compare through JSON: the vector's record against ours. */
        json_t *expected = json_loads(v[i].json, 0, NULL), *got = reading_to_json(&r);
        assert_non_null(expected);
        const char *key;
        json_t *value;
        json_object_foreach(expected, key, value) {
            json_t *mine = json_object_get(got, key);
            assert_non_null(mine);
            if (json_is_string(value)) {
                assert_string_equal(json_string_value(mine), json_string_value(value));
            } else if (json_is_integer(value)) { /* timestamps: ours are RFC 3339 */
                int64_t ms;
                assert_int_equal(timefmt_parse_rfc3339(json_string_value(mine), &ms), 0);
                assert_true(ms == json_integer_value(value));
            } else {
                assert_true(json_number_value(mine) == json_number_value(value));
            }
        }
        json_decref(expected);
        json_decref(got);
        /* And a codec writing that schema version encodes it byte for byte as
         * fastavro did. */
        const codec_schema_info *info = find_schema(c, v[i].file);
        int versions[READING_KIND_COUNT] = {0};
        versions[info->kind] = info->version;
        codec *writer = codec_new_versions(versions, &err);
        assert_non_null(writer);
        const void *data;
        size_t len;
        assert_int_equal(codec_encode(writer, &r, &data, &len, &err), 0);
        assert_int_equal(len, v[i].message_len);
        assert_memory_equal(data, v[i].message, len);
        codec_free(writer);
    }
}

static void test_round_trip(void **state)
{
    codec *c = *state;
    reading in, out;
    memset(&in, 0, sizeof in); /* padding too, for the byte comparison */
    in.kind = READING_VEHICLE;
    snprintf(in.u.vehicle.vehicle_id, sizeof in.u.vehicle.vehicle_id, "%s",
             "V-ünïcödé-0123456789012345678901234567890123456789012345678901");
    in.u.vehicle.soc = 0.1 + 0.2;
    in.u.vehicle.kwh_delivered_dc = 1e-300;
    in.u.vehicle.battery_temp = -12.5;
    in.u.vehicle.ts_ms = -1; /* encoding does not validate; validation is separate */
    const void *data;
    size_t len;
    eie_err err;
    assert_int_equal(codec_encode(c, &in, &data, &len, &err), 0);
    assert_int_equal(codec_decode(c, data, len, &out, &err), CODEC_OK);
    assert_memory_equal(&in, &out, sizeof in);

    memset(&in, 0, sizeof in);
    in.kind = READING_ASSIGNMENT;
    strcpy(in.u.assignment.vehicle_id, "V1");
    strcpy(in.u.assignment.meter_id, "M\t1");
    in.u.assignment.valid_from_ms = INT64_MAX;
    assert_int_equal(codec_encode(c, &in, &data, &len, &err), 0);
    assert_int_equal(codec_decode(c, data, len, &out, &err), CODEC_OK);
    assert_memory_equal(&in, &out, sizeof in);
}

static void test_malformed_messages(void **state)
{
    codec *c = *state;
    reading r;
    eie_err err;
    vector v[8];
    load_vectors(v, 8);
    unsigned char buf[300];

    assert_int_equal(codec_decode(c, "", 0, &r, &err), CODEC_ERR_FRAMING);
    assert_int_equal(codec_decode(c, "\xc3\x01\x00", 3, &r, &err), CODEC_ERR_FRAMING);
    assert_int_equal(codec_decode(c, "{\"meterId\":\"M1\"}", 16, &r, &err), CODEC_ERR_FRAMING);

    memcpy(buf, v[0].message, v[0].message_len);
    buf[5] ^= 0xff; /* another fingerprint */
    assert_int_equal(codec_decode(c, buf, v[0].message_len, &r, &err), CODEC_ERR_UNKNOWN_SCHEMA);
    assert_non_null(strstr(err.msg, "unknown schema fingerprint"));

    /* Every truncation of a good message is rejected, none crashes. */
    for (size_t len = CODEC_HEADER_LEN; len < v[0].message_len; len++)
        assert_int_equal(codec_decode(c, v[0].message, len, &r, &err), CODEC_ERR_BODY);

    /* Trailing bytes. */
    memcpy(buf, v[0].message, v[0].message_len);
    buf[v[0].message_len] = 0;
    assert_int_equal(codec_decode(c, buf, v[0].message_len + 1, &r, &err), CODEC_ERR_BODY);

    /* A string length far beyond the message, and a negative one. */
    memcpy(buf, v[0].message, CODEC_HEADER_LEN);
    memcpy(buf + CODEC_HEADER_LEN, "\xfe\xff\xff\xff\x0f" "M1", 7);
    assert_int_equal(codec_decode(c, buf, CODEC_HEADER_LEN + 7, &r, &err), CODEC_ERR_BODY);
    buf[CODEC_HEADER_LEN] = 0x03; /* zigzag -2 */
    assert_int_equal(codec_decode(c, buf, CODEC_HEADER_LEN + 1, &r, &err), CODEC_ERR_BODY);

    /* An id longer than the model allows decodes as Avro but is refused. */
    size_t off = CODEC_HEADER_LEN;
    memcpy(buf, v[0].message, off);
    buf[off++] = 0x82; /* zigzag varint of 65: a string of 65 bytes */
    buf[off++] = 0x01;
    memset(buf + off, 'x', 65);
    off += 65;
    memset(buf + off, 0, 8 + 8);
    off += 16;
    buf[off++] = 0;
    assert_int_equal(codec_decode(c, buf, off, &r, &err), CODEC_ERR_BODY);
    assert_non_null(strstr(err.msg, "longer than 64"));

    /* An id with a NUL inside. */
    off = CODEC_HEADER_LEN;
    buf[off++] = 0x06; /* 3 bytes */
    memcpy(buf + off, "M\0" "1", 3);
    off += 3;
    memset(buf + off, 0, 16);
    off += 16;
    buf[off++] = 0;
    assert_int_equal(codec_decode(c, buf, off, &r, &err), CODEC_ERR_BODY);
    assert_non_null(strstr(err.msg, "meterId: contains NUL"));

    /* Random bodies behind a valid header: rejected or decoded, never a crash,
     * and exactly as avro-c's generic values decode them. */
    srand(42);
    for (int i = 0; i < 20000; i++) {
        size_t len = CODEC_HEADER_LEN + (size_t)(rand() % 60);
        memcpy(buf, v[i % 3].message, CODEC_HEADER_LEN);
        for (size_t j = CODEC_HEADER_LEN; j < len; j++)
            buf[j] = (unsigned char)rand();
        codec_status st = codec_decode(c, buf, len, &r, &err);
        assert_true(st == CODEC_OK || st == CODEC_ERR_BODY);
        reading generic;
        eie_err generic_err;
        assert_int_equal(codec_decode_generic(c, buf, len, &generic, &generic_err), st);
        if (st == CODEC_OK)
            assert_memory_equal(&r, &generic, sizeof r);
        else
            assert_string_equal(err.msg, generic_err.msg);
    }
}

/* Schema evolution: vehicle readings v1 and v2 (which adds an optional
 * chargerId) are read by readers of either version. */
static void test_schema_versions(void **state)
{
    codec *v2 = *state;
    vector v[8];
    size_t n = load_vectors(v, 8);
    const vector *old = NULL, *new = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].file, "vehicle_reading.v1.avsc") == 0)
            old = &v[i];
        if (strcmp(v[i].file, "vehicle_reading.v2.avsc") == 0)
            new = &v[i];
    }
    assert_non_null(old);
    assert_non_null(new);
    reading r;
    eie_err err;
    /* The newest reader reads v1 records: chargerId takes its default. */
    assert_int_equal(codec_decode(v2, old->message, old->message_len, &r, &err), CODEC_OK);
    assert_string_equal(r.u.vehicle.vehicle_id, "V1");
    assert_string_equal(r.u.vehicle.charger_id, "");
    assert_int_equal(codec_decode(v2, new->message, new->message_len, &r, &err), CODEC_OK);
    assert_string_equal(r.u.vehicle.charger_id, "C-17");
    assert_true(r.u.vehicle.battery_temp == -3.5);

    /* A v1 reader reads v2 records: chargerId, unknown to it, is left out. */
    int versions[READING_KIND_COUNT] = {0};
    versions[READING_VEHICLE] = 1;
    codec *v1 = codec_new_versions(versions, &err);
    assert_non_null(v1);
    assert_int_equal(codec_decode(v1, new->message, new->message_len, &r, &err), CODEC_OK);
    assert_string_equal(r.u.vehicle.vehicle_id, "V2");
    assert_string_equal(r.u.vehicle.charger_id, "");
    assert_true(r.u.vehicle.soc == 12.5 && r.u.vehicle.ts_ms == 1770642540000LL);

    /* What a v1 writer writes carries v1's fingerprint, and the newest reader
     * reads it. */
    strcpy(r.u.vehicle.charger_id, "C-9");
    const void *data;
    size_t len;
    assert_int_equal(codec_encode(v1, &r, &data, &len, &err), 0);
    assert_memory_equal(data, old->message, 10);
    assert_int_equal(codec_decode(v2, data, len, &r, &err), CODEC_OK);
    assert_string_equal(r.u.vehicle.charger_id, "");
    codec_free(v1);

    /* A pinned version that does not exist is an error, not a silent fallback. */
    versions[READING_VEHICLE] = 9;
    assert_null(codec_new_versions(versions, &err));
}

int main(int argc, char **argv)
{
    vectors_path = argc > 1 ? argv[1] : "tests/data/avro_vectors.tsv";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fingerprint_spec_values),
        cmocka_unit_test_setup_teardown(test_canonical_forms_match_fastavro, setup, teardown),
        cmocka_unit_test(test_canonical_form_rules),
        cmocka_unit_test_setup_teardown(test_decodes_fastavro_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_versions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
