/* Schema versions, encode and decode of readings; see codec.h. */
#include "codec.h"

#include <avro.h>
#include <stdlib.h>
#include <string.h>

#include "codec_direct.h"
#include "codec_precheck.h"
#include "embedded.h"

#define MAX_FIELDS CODEC_MAX_FIELDS
/* Schema files are named <prefix>.v<N>.avsc. */
static const char *const file_prefixes[READING_KIND_COUNT] = {
    [READING_METER] = "meter_reading",
    [READING_VEHICLE] = "vehicle_reading",
    [READING_ASSIGNMENT] = "vehicle_meter_assignment",
};

/* Schema resolution is done here rather than by avro-c's resolved writer, which
 * refuses a reader field missing from the writer even when it has a default:
 * a message is read into a value of its own writer schema, and fields are then
 * matched by name, as the specification's resolution rules do: a field the
 * reader lacks is ignored, an optional field the writer lacks takes its
 * default (null), a required one makes the versions incompatible at start. */
typedef struct schema_version {
    codec_schema_info info;
    strbuf canonical;
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;         /* reused for every message of this version */
    int field_index[MAX_FIELDS]; /* per field of the kind; -1 when absent */
    codec_direct direct;         /* how its messages are decoded (steps NULL: generic) */
} schema_version;

typedef struct kind_state {
    schema_version *newest; /* the reader's and writer's version */
    int reader_has[MAX_FIELDS];
} kind_state;

#define MAX_VERSIONS 32

struct codec {
    schema_version versions[MAX_VERSIONS];
    size_t n_versions;
    kind_state kinds[READING_KIND_COUNT];
    avro_reader_t reader;
    avro_writer_t writer;
    strbuf out;
};

/* "vehicle_reading.v2.avsc" -> kind VEHICLE, version 2. */
static int parse_file_name(const char *file, reading_kind *kind, int *version)
{
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        size_t n = strlen(file_prefixes[k]);
        if (strncmp(file, file_prefixes[k], n) == 0 && strncmp(file + n, ".v", 2) == 0) {
            char *end;
            long v = strtol(file + n + 2, &end, 10);
            if (v > 0 && strcmp(end, ".avsc") == 0) {
                *kind = (reading_kind)k;
                *version = (int)v;
                return 0;
            }
        }
    }
    return -1;
}

static int load_version(codec *c, const eie_embedded_file *file, const int *want, eie_err *err)
{
    if (c->n_versions == MAX_VERSIONS) {
        eie_err_set(err, "more than %d schema versions", MAX_VERSIONS);
        return -1;
    }
    schema_version *v = &c->versions[c->n_versions];
    if (parse_file_name(file->name, &v->info.kind, &v->info.version) < 0) {
        eie_err_set(err, "schema file %s: name must be <kind>.v<N>.avsc", file->name);
        return -1;
    }
    c->n_versions++;
    v->info.file = file->name;
    if (codec_canonical_form(file->text, &v->canonical, err) < 0) {
        eie_err_prefix(err, "schema %s", file->name);
        return -1;
    }
    v->info.canonical_form = v->canonical.data;
    v->info.fingerprint = codec_fingerprint64(v->canonical.data, v->canonical.len);
    if (avro_schema_from_json_length(file->text, strlen(file->text), &v->schema) != 0) {
        eie_err_set(err, "schema %s: avro-c cannot parse it: %s", file->name, avro_strerror());
        return -1;
    }
    for (size_t i = 0; i + 1 < c->n_versions; i++) {
        if (c->versions[i].info.fingerprint == v->info.fingerprint) {
            eie_err_set(err, "schemas %s and %s have the same canonical form", c->versions[i].info.file,
                        file->name);
            return -1;
        }
    }
    kind_state *ks = &c->kinds[v->info.kind];
    int wanted = want ? want[v->info.kind] : 0;
    if (wanted ? v->info.version == wanted
               : !ks->newest || ks->newest->info.version < v->info.version)
        ks->newest = v;
    return 0;
}

/* An optional field is a ["null", T] union. */
static int field_type_ok(avro_schema_t schema, reading_field_type type)
{
    if (reading_field_optional(type)) {
        if (avro_typeof(schema) != AVRO_UNION || avro_schema_union_size(schema) != 2 ||
            avro_typeof(avro_schema_union_branch(schema, 0)) != AVRO_NULL)
            return 0;
        schema = avro_schema_union_branch(schema, 1);
    }
    switch (type) {
    case FIELD_ID:
    case FIELD_OPT_ID:
        return avro_typeof(schema) == AVRO_STRING;
    case FIELD_DOUBLE:
        return avro_typeof(schema) == AVRO_DOUBLE;
    case FIELD_TIME:
        return avro_typeof(schema) == AVRO_INT64;
    }
    return 0;
}

static int prepare_version(schema_version *v, eie_err *err)
{
    size_t n_fields;
    const reading_field *fields = reading_fields(v->info.kind, &n_fields);
    if (n_fields > MAX_FIELDS) {
        eie_err_set(err, "%s readings have more than %d fields", reading_kind_name(v->info.kind),
                    MAX_FIELDS);
        return -1;
    }
    for (size_t i = 0; i < n_fields; i++) {
        v->field_index[i] = avro_schema_record_field_get_index(v->schema, fields[i].name);
        if (v->field_index[i] >= 0 &&
            !field_type_ok(avro_schema_record_field_get_by_index(v->schema, v->field_index[i]),
                           fields[i].type)) {
            eie_err_set(err, "schema %s: field %s has a type the model cannot take", v->info.file,
                        fields[i].name);
            return -1;
        }
    }
    v->iface = avro_generic_class_from_schema(v->schema);
    if (!v->iface || avro_generic_value_new(v->iface, &v->value) != 0) {
        eie_err_set(err, "schema %s: %s", v->info.file, avro_strerror());
        return -1;
    }
    return 0;
}

/* Every version of a kind must give the reader's required fields. */
static int prepare_kind(codec *c, reading_kind k, eie_err *err)
{
    kind_state *ks = &c->kinds[k];
    if (!ks->newest) {
        eie_err_set(err, "no schema for %s readings", reading_kind_name(k));
        return -1;
    }
    size_t n_fields;
    const reading_field *fields = reading_fields(k, &n_fields);
    for (size_t i = 0; i < n_fields; i++)
        ks->reader_has[i] = ks->newest->field_index[i] >= 0;
    for (size_t n = 0; n < c->n_versions; n++) {
        const schema_version *v = &c->versions[n];
        if (v->info.kind != k)
            continue;
        for (size_t i = 0; i < n_fields; i++) {
            if (reading_field_optional(fields[i].type))
                continue;
            if (v->field_index[i] < 0) {
                eie_err_set(err, "schema %s cannot be read: it has no field %s", v->info.file,
                            fields[i].name);
                return -1;
            }
        }
    }
    for (size_t n = 0; n < c->n_versions; n++) {
        schema_version *v = &c->versions[n];
        if (v->info.kind == k) /* on failure, the generic path */
            codec_direct_plan(&v->direct, v->schema, k, v->field_index, ks->reader_has);
    }
    return 0;
}

codec *codec_new(eie_err *err)
{
    return codec_new_versions(NULL, err);
}

codec *codec_new_versions(const int version[READING_KIND_COUNT], eie_err *err)
{
    codec *c = calloc(1, sizeof *c);
    if (!c) {
        eie_err_set(err, "out of memory");
        return NULL;
    }
    for (const eie_embedded_file *f = eie_embedded_avro; f->name; f++)
        if (load_version(c, f, version, err) < 0)
            goto fail;
    for (size_t i = 0; i < c->n_versions; i++)
        if (prepare_version(&c->versions[i], err) < 0)
            goto fail;
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (prepare_kind(c, (reading_kind)k, err) < 0)
            goto fail;
    c->reader = avro_reader_memory("", 0);
    c->writer = avro_writer_memory("", 0);
    if (!c->reader || !c->writer) {
        eie_err_set(err, "out of memory");
        goto fail;
    }
    return c;
fail:
    codec_free(c);
    return NULL;
}

void codec_free(codec *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_versions; i++) {
        schema_version *v = &c->versions[i];
        if (v->iface) {
            avro_value_decref(&v->value);
            codec_direct_free(&v->direct);
            avro_value_iface_decref(v->iface);
        }
        if (v->schema)
            avro_schema_decref(v->schema);
        strbuf_free(&v->canonical);
    }
    if (c->reader)
        avro_reader_free(c->reader);
    if (c->writer)
        avro_writer_free(c->writer);
    strbuf_free(&c->out);
    free(c);
}

size_t codec_schema_count(const codec *c)
{
    return c->n_versions;
}

const codec_schema_info *codec_schema_at(const codec *c, size_t i)
{
    return i < c->n_versions ? &c->versions[i].info : NULL;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int codec_encode(codec *c, const reading *r, const void **data, size_t *len, eie_err *err)
{
    schema_version *w = c->kinds[r->kind].newest;
    avro_value_t field;
    const char *base = (const char *)r;
    avro_value_reset(&w->value);
    size_t n_fields;
    const reading_field *fields = reading_fields(r->kind, &n_fields);
    for (size_t i = 0; i < n_fields; i++) {
        const reading_field *fd = &fields[i];
        if (w->field_index[i] < 0)
            continue;
        int rc = avro_value_get_by_index(&w->value, w->field_index[i], &field, NULL);
        const void *src = base + fd->offset;
        if (rc == 0 && reading_field_optional(fd->type)) {
            int present = *(const char *)src != '\0';
            avro_value_t branch;
            rc = avro_value_set_branch(&field, present, &branch);
            if (rc == 0 && !present)
                rc = avro_value_set_null(&branch);
            if (!present)
                goto next;
            field = branch;
        }
        if (rc == 0) {
            switch (fd->type) {
            case FIELD_ID:
            case FIELD_OPT_ID:
                rc = avro_value_set_string_len(&field, src, strlen(src) + 1);
                break;
            case FIELD_DOUBLE:
                rc = avro_value_set_double(&field, *(const double *)src);
                break;
            case FIELD_TIME:
                rc = avro_value_set_long(&field, *(const int64_t *)src);
                break;
            }
        }
    next:
        if (rc != 0) {
            eie_err_set(err, "encoding %s: %s", fd->name, avro_strerror());
            return -1;
        }
    }
    size_t body = 0;
    if (avro_value_sizeof(&w->value, &body) != 0) {
        eie_err_set(err, "encoding %s reading: %s", reading_kind_name(r->kind), avro_strerror());
        return -1;
    }
    strbuf_reset(&c->out);
    strbuf_reserve(&c->out, CODEC_HEADER_LEN + body);
    unsigned char *out = (unsigned char *)c->out.data;
    out[0] = 0xC3;
    out[1] = 0x01;
    put_le64(out + 2, w->info.fingerprint);
    avro_writer_memory_set_dest(c->writer, (const char *)out + CODEC_HEADER_LEN, (int64_t)body);
    if (avro_value_write(c->writer, &w->value) != 0) {
        eie_err_set(err, "encoding %s reading: %s", reading_kind_name(r->kind), avro_strerror());
        return -1;
    }
    c->out.len = CODEC_HEADER_LEN + body;
    *data = out;
    *len = c->out.len;
    return 0;
}

/* The reading from a value of version v, for the codec's reader version. */
static int extract(codec *c, schema_version *v, reading *out, eie_err *err)
{
    reading_kind k = v->info.kind;
    const kind_state *ks = &c->kinds[k];
    char *base = (char *)out;
    memset(out, 0, sizeof *out);
    out->kind = k;
    size_t n_fields;
    const reading_field *fields = reading_fields(k, &n_fields);
    for (size_t i = 0; i < n_fields; i++) {
        const reading_field *fd = &fields[i];
        avro_value_t field, branch;
        void *dst = base + fd->offset;
        if (!ks->reader_has[i] || v->field_index[i] < 0)
            continue; /* not the reader's, or the writer's default: absent */
        if (avro_value_get_by_index(&v->value, v->field_index[i], &field, NULL) != 0) {
            eie_err_set(err, "%s: %s", fd->name, avro_strerror());
            return -1;
        }
        int disc = -1;
        if (reading_field_optional(fd->type)) {
            if (avro_value_get_discriminant(&field, &disc) != 0 ||
                avro_value_get_current_branch(&field, &branch) != 0) {
                eie_err_set(err, "%s: not a union", fd->name);
                return -1;
            }
            if (disc != 1) /* null */
                continue;
            field = branch;
        }
        switch (fd->type) {
        case FIELD_OPT_ID:
        case FIELD_ID: {
            const char *s;
            size_t size; /* counts the terminating NUL */
            if (avro_value_get_string(&field, &s, &size) != 0 || size == 0) {
                eie_err_set(err, "%s: not a string", fd->name);
                return -1;
            }
            if (size - 1 > READING_ID_MAX) {
                eie_err_set(err, "%s: longer than %d bytes", fd->name, READING_ID_MAX);
                return -1;
            }
            if (memchr(s, '\0', size - 1)) {
                eie_err_set(err, "%s: contains NUL", fd->name);
                return -1;
            }
            memcpy(dst, s, size);
            break;
        }
        case FIELD_DOUBLE:
            if (avro_value_get_double(&field, (double *)dst) != 0) {
                eie_err_set(err, "%s: not a double", fd->name);
                return -1;
            }
            break;
        case FIELD_TIME:
            if (avro_value_get_long(&field, (int64_t *)dst) != 0) {
                eie_err_set(err, "%s: not a long", fd->name);
                return -1;
            }
            break;
        }
    }
    return 0;
}

/* The version a message names, with its body; NULL with *status and err set
 * when it names none, or is not single-object encoding. */
static schema_version *message_version(codec *c, const void *data, size_t len,
                                       const unsigned char **body, codec_status *status,
                                       eie_err *err)
{
    const unsigned char *p = data;
    if (len < CODEC_HEADER_LEN || p[0] != 0xC3 || p[1] != 0x01) {
        eie_err_set(err, "not Avro single-object encoding (expected marker C3 01 and a "
                         "fingerprint, got %zu bytes)", len);
        *status = CODEC_ERR_FRAMING;
        return NULL;
    }
    uint64_t fp = get_le64(p + 2);
    for (size_t i = 0; i < c->n_versions; i++) {
        if (c->versions[i].info.fingerprint == fp) {
            *body = p + CODEC_HEADER_LEN;
            return &c->versions[i];
        }
    }
    eie_err_set(err, "unknown schema fingerprint %016llx", (unsigned long long)fp);
    *status = CODEC_ERR_UNKNOWN_SCHEMA;
    return NULL;
}

codec_status codec_decode_generic(codec *c, const void *data, size_t len, reading *out,
                                  eie_err *err)
{
    const unsigned char *body;
    codec_status status;
    schema_version *v = message_version(c, data, len, &body, &status, err);
    if (!v)
        return status;
    size_t body_len = len - CODEC_HEADER_LEN, used;
    if (codec_precheck(v->schema, body, body_len, &used) < 0) {
        eie_err_set(err, "body does not decode as %s", v->info.file);
        return CODEC_ERR_BODY;
    }
    if (used != body_len) {
        eie_err_set(err, "%zu bytes after the end of the %s body", body_len - used, v->info.file);
        return CODEC_ERR_BODY;
    }
    avro_reader_memory_set_source(c->reader, (const char *)body, (int64_t)body_len);
    if (avro_value_read(c->reader, &v->value) != 0) {
        eie_err_set(err, "body does not decode as %s: %s", v->info.file, avro_strerror());
        return CODEC_ERR_BODY;
    }
    if (extract(c, v, out, err) < 0) {
        eie_err_prefix(err, "%s", v->info.file);
        return CODEC_ERR_BODY;
    }
    return CODEC_OK;
}

codec_status codec_decode(codec *c, const void *data, size_t len, reading *out, eie_err *err)
{
    const unsigned char *body;
    codec_status status;
    schema_version *v = message_version(c, data, len, &body, &status, err);
    if (!v)
        return status;
    if (!v->direct.steps) /* no plan (out of memory at start) */
        return codec_decode_generic(c, data, len, out, err);
    return codec_direct_decode(&v->direct, body, len - CODEC_HEADER_LEN, v->info.file, out, err);
}
