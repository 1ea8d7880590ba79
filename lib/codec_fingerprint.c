/* Parsing Canonical Form and CRC-64-AVRO; see codec_fingerprint.h. */
#include "codec_fingerprint.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

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
