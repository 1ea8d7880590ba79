/* Avro single-object encoding of readings; see codec.h. */
#include "codec.h"

#include <avro.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"

/* ---- CRC-64-AVRO and Parsing Canonical Form ---- */

#define CRC64_AVRO_EMPTY 0xc15d213aa4d7a795ULL

uint64_t codec_fingerprint64(const void *data, size_t len)
{
    static uint64_t table[256];
    static int ready;
    if (!ready) { /* idempotent, so a race between threads only repeats work */
        for (int i = 0; i < 256; i++) {
            uint64_t fp = (uint64_t)i;
            for (int j = 0; j < 8; j++)
                fp = (fp >> 1) ^ (CRC64_AVRO_EMPTY & -(fp & 1));
            table[i] = fp;
        }
        ready = 1;
    }
    const unsigned char *p = data;
    uint64_t fp = CRC64_AVRO_EMPTY;
    for (size_t i = 0; i < len; i++)
        fp = (fp >> 8) ^ table[(fp ^ p[i]) & 0xff];
    return fp;
}

static int is_primitive(const char *name)
{
    static const char *const names[] = {"null", "boolean", "int", "long", "float",
                                        "double", "bytes", "string"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

static void pcf_string(strbuf *out, const char *s)
{
    json_t *str = json_string(s);
    char *text = json_dumps(str, JSON_ENCODE_ANY);
    strbuf_puts(out, text);
    free(text);
    json_decref(str);
}

/* The [FULLNAMES] rule: a name with a dot is already full; otherwise it takes the
 * schema's own namespace, else the enclosing one. */
static void full_name(const char *name, const char *ns, const char *enclosing, strbuf *out)
{
    if (strchr(name, '.') == NULL) {
        const char *space = ns ? ns : enclosing;
        if (space && *space) {
            strbuf_puts(out, space);
            strbuf_putc(out, '.');
        }
    }
    strbuf_puts(out, name);
}

static int pcf_write(const json_t *schema, const char *enclosing, strbuf *out, eie_err *err);

static int pcf_named(const json_t *schema, const char *type, const char *enclosing, strbuf *out,
                     eie_err *err)
{
    const char *name = json_string_value(json_object_get(schema, "name"));
    if (!name) {
        eie_err_set(err, "a %s schema needs a string \"name\"", type);
        return -1;
    }
    strbuf full = STRBUF_INIT;
    full_name(name, json_string_value(json_object_get(schema, "namespace")), enclosing, &full);
    /* Names inside take this type's namespace: everything before the last dot. */
    char *ns = strdup(full.data);
    char *dot = strrchr(ns, '.');
    *(dot ? dot : ns) = '\0';

    int rc = 0;
    strbuf_puts(out, "{\"name\":");
    pcf_string(out, full.data);
    strbuf_puts(out, ",\"type\":");
    pcf_string(out, type);
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0) {
        const json_t *fields = json_object_get(schema, "fields");
        if (!json_is_array(fields)) {
            eie_err_set(err, "record %s needs a \"fields\" array", full.data);
            rc = -1;
            goto done;
        }
        strbuf_puts(out, ",\"fields\":[");
        for (size_t i = 0; i < json_array_size(fields); i++) {
            const json_t *field = json_array_get(fields, i);
            const char *fname = json_string_value(json_object_get(field, "name"));
            if (!fname || !json_object_get(field, "type")) {
                eie_err_set(err, "field %zu of %s needs a name and a type", i, full.data);
                rc = -1;
                goto done;
            }
            strbuf_puts(out, i ? ",{\"name\":" : "{\"name\":");
            pcf_string(out, fname);
            strbuf_puts(out, ",\"type\":");
            if ((rc = pcf_write(json_object_get(field, "type"), ns, out, err)) < 0)
                goto done;
            strbuf_putc(out, '}');
        }
        strbuf_putc(out, ']');
    } else if (strcmp(type, "enum") == 0) {
        const json_t *symbols = json_object_get(schema, "symbols");
        strbuf_puts(out, ",\"symbols\":[");
        for (size_t i = 0; i < json_array_size(symbols); i++) {
            if (i)
                strbuf_putc(out, ',');
            pcf_string(out, json_string_value(json_array_get(symbols, i)));
        }
        strbuf_putc(out, ']');
    } else { /* fixed */
        strbuf_printf(out, ",\"size\":%lld",
                      (long long)json_integer_value(json_object_get(schema, "size")));
    }
    strbuf_putc(out, '}');
done:
    free(ns);
    strbuf_free(&full);
    return rc;
}

static int pcf_write(const json_t *schema, const char *enclosing, strbuf *out, eie_err *err)
{
    if (json_is_string(schema)) {
        const char *name = json_string_value(schema);
        if (is_primitive(name)) {
            pcf_string(out, name);
        } else {
            strbuf full = STRBUF_INIT;
            full_name(name, NULL, enclosing, &full);
            pcf_string(out, full.data);
            strbuf_free(&full);
        }
        return 0;
    }
    if (json_is_array(schema)) {
        strbuf_putc(out, '[');
        for (size_t i = 0; i < json_array_size(schema); i++) {
            if (i)
                strbuf_putc(out, ',');
            if (pcf_write(json_array_get(schema, i), enclosing, out, err) < 0)
                return -1;
        }
        strbuf_putc(out, ']');
        return 0;
    }
    if (!json_is_object(schema)) {
        eie_err_set(err, "a schema must be a string, an array or an object");
        return -1;
    }
    const json_t *type = json_object_get(schema, "type");
    if (!json_is_string(type))
        return type ? pcf_write(type, enclosing, out, err)
                    : (eie_err_set(err, "schema object without \"type\""), -1);
    const char *t = json_string_value(type);
    if (is_primitive(t)) { /* [PRIMITIVES]: logicalType and the like are dropped */
        pcf_string(out, t);
        return 0;
    }
    if (strcmp(t, "array") == 0 || strcmp(t, "map") == 0) {
        int is_array = t[0] == 'a';
        strbuf_puts(out, is_array ? "{\"type\":\"array\",\"items\":" : "{\"type\":\"map\",\"values\":");
        if (pcf_write(json_object_get(schema, is_array ? "items" : "values"), enclosing, out, err) <
            0)
            return -1;
        strbuf_putc(out, '}');
        return 0;
    }
    if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0 || strcmp(t, "enum") == 0 ||
        strcmp(t, "fixed") == 0)
        return pcf_named(schema, t, enclosing, out, err);
    /* A bare name in an object's "type" refers to a named type. */
    return pcf_write(type, enclosing, out, err);
}

int codec_canonical_form(const char *schema_json, strbuf *out, eie_err *err)
{
    json_error_t jerr;
    json_t *schema = json_loads(schema_json, JSON_DECODE_ANY, &jerr);
    if (!schema) {
        eie_err_set(err, "schema is not JSON: %s at line %d", jerr.text, jerr.line);
        return -1;
    }
    int rc = pcf_write(schema, "", out, err);
    json_decref(schema);
    return rc;
}

/* ---- Body pre-check ----
 * avro-c trusts length prefixes (it allocates what a string claims to hold before
 * checking the input has it), so a body is first walked against the writer schema
 * with every length checked against the bytes that remain. */

static int read_varint(const unsigned char **p, const unsigned char *end, int64_t *out)
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
        return read_varint(p, end, &n);
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
        if (read_varint(p, end, &n) < 0 || n < 0 || n > end - *p)
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
        return read_varint(p, end, &n) < 0 || n < 0 || n >= avro_schema_enum_number_of_symbols(schema)
                   ? -1
                   : 0;
    case AVRO_UNION:
        if (read_varint(p, end, &n) < 0 || n < 0 || (size_t)n >= avro_schema_union_size(schema))
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
            if (read_varint(p, end, &n) < 0)
                return -1;
            if (n == 0)
                return 0;
            if (n < 0) { /* a negative count is followed by the block's byte size */
                int64_t bytes;
                if (n == INT64_MIN || read_varint(p, end, &bytes) < 0)
                    return -1;
                n = -n;
            }
            if (n > end - *p + 1) /* bounds the loop: only null items take no bytes */
                return -1;
            for (int64_t i = 0; i < n; i++) {
                int64_t key_len;
                if (avro_typeof(schema) == AVRO_MAP) { /* map keys are strings */
                    if (read_varint(p, end, &key_len) < 0 || key_len < 0 || key_len > end - *p)
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

/* ---- Schema versions ---- */

/* FIELD_OPT_ID: a ["null", "string"] union, "" for null; a field that the
 * codec's schema of the kind lacks is left empty. */
typedef enum { FIELD_ID, FIELD_DOUBLE, FIELD_TIME, FIELD_OPT_ID } field_type;

typedef struct field_desc {
    const char *name;
    field_type type;
    size_t offset; /* into struct reading */
} field_desc;

#define FIELD(name, type, member) {name, type, offsetof(reading, u.member)}
static const field_desc meter_fields[] = {
    FIELD("meterId", FIELD_ID, meter.meter_id),
    FIELD("kwhConsumedAc", FIELD_DOUBLE, meter.kwh_consumed_ac),
    FIELD("voltage", FIELD_DOUBLE, meter.voltage),
    FIELD("timestamp", FIELD_TIME, meter.ts_ms),
};
static const field_desc vehicle_fields[] = {
    FIELD("vehicleId", FIELD_ID, vehicle.vehicle_id),
    FIELD("soc", FIELD_DOUBLE, vehicle.soc),
    FIELD("kwhDeliveredDc", FIELD_DOUBLE, vehicle.kwh_delivered_dc),
    FIELD("batteryTemp", FIELD_DOUBLE, vehicle.battery_temp),
    FIELD("timestamp", FIELD_TIME, vehicle.ts_ms),
    FIELD("chargerId", FIELD_OPT_ID, vehicle.charger_id),
};
static const field_desc assignment_fields[] = {
    FIELD("vehicleId", FIELD_ID, assignment.vehicle_id),
    FIELD("meterId", FIELD_ID, assignment.meter_id),
    FIELD("validFrom", FIELD_TIME, assignment.valid_from_ms),
};
#undef FIELD

#define MAX_FIELDS 8
static const struct {
    const char *file_prefix;
    const field_desc *fields;
    size_t n_fields;
} kinds[READING_KIND_COUNT] = {
    [READING_METER] = {"meter_reading", meter_fields, 4},
    [READING_VEHICLE] = {"vehicle_reading", vehicle_fields, 6},
    [READING_ASSIGNMENT] = {"vehicle_meter_assignment", assignment_fields, 3},
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

const char *codec_status_name(codec_status status)
{
    switch (status) {
    case CODEC_OK:
        return "ok";
    case CODEC_ERR_FRAMING:
        return "bad-framing";
    case CODEC_ERR_UNKNOWN_SCHEMA:
        return "unknown-schema";
    case CODEC_ERR_BODY:
        return "bad-body";
    }
    return "unknown";
}

/* "vehicle_reading.v2.avsc" -> kind VEHICLE, version 2. */
static int parse_file_name(const char *file, reading_kind *kind, int *version)
{
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        size_t n = strlen(kinds[k].file_prefix);
        if (strncmp(file, kinds[k].file_prefix, n) == 0 && strncmp(file + n, ".v", 2) == 0) {
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

static int field_type_ok(avro_schema_t schema, field_type type)
{
    switch (type) {
    case FIELD_ID:
        return avro_typeof(schema) == AVRO_STRING;
    case FIELD_DOUBLE:
        return avro_typeof(schema) == AVRO_DOUBLE;
    case FIELD_TIME:
        return avro_typeof(schema) == AVRO_INT64;
    case FIELD_OPT_ID:
        return avro_typeof(schema) == AVRO_UNION && avro_schema_union_size(schema) == 2 &&
               avro_typeof(avro_schema_union_branch(schema, 0)) == AVRO_NULL &&
               avro_typeof(avro_schema_union_branch(schema, 1)) == AVRO_STRING;
    }
    return 0;
}

static int prepare_version(schema_version *v, eie_err *err)
{
    const field_desc *fields = kinds[v->info.kind].fields;
    for (size_t i = 0; i < kinds[v->info.kind].n_fields; i++) {
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
    for (size_t i = 0; i < kinds[k].n_fields; i++)
        ks->reader_has[i] = ks->newest->field_index[i] >= 0;
    for (size_t n = 0; n < c->n_versions; n++) {
        const schema_version *v = &c->versions[n];
        if (v->info.kind != k)
            continue;
        for (size_t i = 0; i < kinds[k].n_fields; i++) {
            if (kinds[k].fields[i].type == FIELD_OPT_ID)
                continue;
            if (v->field_index[i] < 0) {
                eie_err_set(err, "schema %s cannot be read: it has no field %s", v->info.file,
                            kinds[k].fields[i].name);
                return -1;
            }
        }
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
    for (size_t i = 0; i < kinds[r->kind].n_fields; i++) {
        const field_desc *fd = &kinds[r->kind].fields[i];
        if (w->field_index[i] < 0)
            continue;
        int rc = avro_value_get_by_index(&w->value, w->field_index[i], &field, NULL);
        if (rc == 0) {
            const void *src = base + fd->offset;
            avro_value_t branch;
            switch (fd->type) {
            case FIELD_OPT_ID:
                rc = *(const char *)src
                         ? avro_value_set_branch(&field, 1, &branch) ||
                               avro_value_set_string_len(&branch, src, strlen(src) + 1)
                         : avro_value_set_branch(&field, 0, &branch) || avro_value_set_null(&branch);
                break;
            case FIELD_ID:
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
    for (size_t i = 0; i < kinds[k].n_fields; i++) {
        const field_desc *fd = &kinds[k].fields[i];
        avro_value_t field, branch;
        if (!ks->reader_has[i] || v->field_index[i] < 0)
            continue; /* not the reader's, or the writer's default: empty */
        if (avro_value_get_by_index(&v->value, v->field_index[i], &field, NULL) != 0) {
            eie_err_set(err, "%s: %s", fd->name, avro_strerror());
            return -1;
        }
        void *dst = base + fd->offset;
        int disc = -1;
        if (fd->type == FIELD_OPT_ID) {
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

codec_status codec_decode(codec *c, const void *data, size_t len, reading *out, eie_err *err)
{
    const unsigned char *p = data;
    if (len < CODEC_HEADER_LEN || p[0] != 0xC3 || p[1] != 0x01) {
        eie_err_set(err, "not Avro single-object encoding (expected marker C3 01 and a "
                         "fingerprint, got %zu bytes)", len);
        return CODEC_ERR_FRAMING;
    }
    uint64_t fp = get_le64(p + 2);
    schema_version *v = NULL;
    for (size_t i = 0; i < c->n_versions && !v; i++)
        if (c->versions[i].info.fingerprint == fp)
            v = &c->versions[i];
    if (!v) {
        eie_err_set(err, "unknown schema fingerprint %016llx", (unsigned long long)fp);
        return CODEC_ERR_UNKNOWN_SCHEMA;
    }
    const unsigned char *body = p + CODEC_HEADER_LEN, *end = p + len, *cursor = body;
    if (skip_value(v->schema, &cursor, end, 0) < 0) {
        eie_err_set(err, "body does not decode as %s", v->info.file);
        return CODEC_ERR_BODY;
    }
    if (cursor != end) {
        eie_err_set(err, "%zu bytes after the end of the %s body", (size_t)(end - cursor),
                    v->info.file);
        return CODEC_ERR_BODY;
    }
    avro_reader_memory_set_source(c->reader, (const char *)body, (int64_t)(end - body));
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
