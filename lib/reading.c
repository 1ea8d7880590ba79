/* The telemetry model and its validation rules; see reading.h. */
#include "reading.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "strbuf.h"
#include "timefmt.h"

static const char *const kind_names[READING_KIND_COUNT] = {"meter", "vehicle", "assignment"};

#define FIELD_ROW(kind_member, member, name, column, type, min, max, unit)                         \
    {name, column, type, offsetof(reading, u.kind_member.member), min, max, unit},
#define METER_ROW(...) FIELD_ROW(meter, __VA_ARGS__)
#define VEHICLE_ROW(...) FIELD_ROW(vehicle, __VA_ARGS__)
#define ASSIGNMENT_ROW(...) FIELD_ROW(assignment, __VA_ARGS__)
static const reading_field meter_fields[] = {READING_METER_FIELDS(METER_ROW)};
static const reading_field vehicle_fields[] = {READING_VEHICLE_FIELDS(VEHICLE_ROW)};
static const reading_field assignment_fields[] = {READING_ASSIGNMENT_FIELDS(ASSIGNMENT_ROW)};
#undef FIELD_ROW
#undef METER_ROW
#undef VEHICLE_ROW
#undef ASSIGNMENT_ROW

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
static const struct {
    const reading_field *fields;
    size_t n;
} field_lists[READING_KIND_COUNT] = {
    [READING_METER] = {meter_fields, COUNT(meter_fields)},
    [READING_VEHICLE] = {vehicle_fields, COUNT(vehicle_fields)},
    [READING_ASSIGNMENT] = {assignment_fields, COUNT(assignment_fields)},
};

const reading_field *reading_fields(reading_kind kind, size_t *n)
{
    *n = field_lists[kind].n;
    return field_lists[kind].fields;
}

int reading_field_optional(reading_field_type type)
{
    return type == FIELD_OPT_ID;
}

static const void *field_ptr(const reading *r, const reading_field *f)
{
    return (const char *)r + f->offset;
}

const char *reading_kind_name(reading_kind kind)
{
    return kind < READING_KIND_COUNT ? kind_names[kind] : "unknown";
}

int reading_kind_parse(const char *name, reading_kind *out)
{
    for (int i = 0; i < READING_KIND_COUNT; i++) {
        if (strcmp(name, kind_names[i]) == 0) {
            *out = (reading_kind)i;
            return 0;
        }
    }
    return -1;
}

const char *reading_key(const reading *r)
{
    return field_ptr(r, &field_lists[r->kind].fields[0]);
}

int64_t reading_time_ms(const reading *r)
{
    /* Named, not looked up in the field lists: the sinks ask several times a
     * row (the lookup was 3% of a replay's CPU). reading_test checks that
     * these are the lists' FIELD_TIME members. */
    switch (r->kind) {
    case READING_METER:
        return r->u.meter.ts_ms;
    case READING_VEHICLE:
        return r->u.vehicle.ts_ms;
    case READING_ASSIGNMENT:
        return r->u.assignment.valid_from_ms;
    }
    return 0;
}

/* Length of the UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates,
 * nothing past U+10FFFF), or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xC2 && s[0] <= 0xDF   ? 2
               : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
               : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4
                                              : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xE0 && s[1] < 0xA0) || (n == 3 && s[0] == 0xED && s[1] > 0x9F) ||
        (n == 4 && s[0] == 0xF0 && s[1] < 0x90) || (n == 4 && s[0] == 0xF4 && s[1] > 0x8F))
        return 0;
    return n;
}

static int check_id(const char *field, const char *id, eie_err *err)
{
    const unsigned char *p = (const unsigned char *)id;
    if (*p == '\0') {
        eie_err_set(err, "%s: must not be empty", field);
        return -1;
    }
    while (*p) {
        if (*p < 0x20 || *p == 0x7f) {
            eie_err_set(err, "%s: must not contain control characters", field);
            return -1;
        }
        size_t n = utf8_sequence(p);
        if (n == 0) {
            eie_err_set(err, "%s: not valid UTF-8", field);
            return -1;
        }
        p += n;
    }
    return 0;
}

static int check_range(const char *field, double v, double lo, double hi, const char *unit,
                       eie_err *err)
{
    if (!isfinite(v)) {
        eie_err_set(err, "%s: must be a finite number", field);
        return -1;
    }
    if (v < lo || v > hi) {
        eie_err_set(err, "%s: %g is outside %g..%g %s", field, v, lo, hi, unit);
        return -1;
    }
    return 0;
}

static int check_time(const char *field, int64_t ms, int64_t now_ms, eie_err *err)
{
    if (ms < READING_MIN_TIME_MS) {
        eie_err_set(err, "%s: before 2000-01-01", field);
        return -1;
    }
    if (ms > now_ms + READING_MAX_FUTURE_MS) {
        eie_err_set(err, "%s: more than 5 minutes in the future", field);
        return -1;
    }
    return 0;
}

int reading_validate(const reading *r, int64_t now_ms, eie_err *err)
{
    if ((unsigned)r->kind >= READING_KIND_COUNT) {
        eie_err_set(err, "unknown reading kind %d", (int)r->kind);
        return -1;
    }
    size_t n;
    const reading_field *fields = reading_fields(r->kind, &n);
    for (const reading_field *f = fields; f < fields + n; f++) {
        const void *v = field_ptr(r, f);
        int rc = 0;
        switch (f->type) {
        case FIELD_OPT_ID:
            if (!*(const char *)v)
                break;
            /* fall through */
        case FIELD_ID:
            rc = check_id(f->name, v, err);
            break;
        case FIELD_DOUBLE:
            rc = check_range(f->name, *(const double *)v, f->min, f->max, f->unit, err);
            break;
        case FIELD_TIME:
            rc = check_time(f->name, *(const int64_t *)v, now_ms, err);
            break;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int get_id(const json_t *obj, const char *field, char *out, eie_err *err)
{
    json_t *v = json_object_get(obj, field);
    if (!v) {
        eie_err_set(err, "%s: missing", field);
        return -1;
    }
    if (!json_is_string(v)) {
        eie_err_set(err, "%s: must be a string", field);
        return -1;
    }
    size_t len = json_string_length(v);
    if (len > READING_ID_MAX) {
        eie_err_set(err, "%s: longer than %d bytes", field, READING_ID_MAX);
        return -1;
    }
    if (memchr(json_string_value(v), '\0', len)) {
        eie_err_set(err, "%s: must not contain NUL", field);
        return -1;
    }
    memcpy(out, json_string_value(v), len + 1);
    return 0;
}

static int get_number(const json_t *obj, const char *field, double *out, eie_err *err)
{
    json_t *v = json_object_get(obj, field);
    if (!v) {
        eie_err_set(err, "%s: missing", field);
        return -1;
    }
    if (!json_is_number(v)) {
        eie_err_set(err, "%s: must be a number", field);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

static int get_time(const json_t *obj, const char *field, int64_t *out, eie_err *err)
{
    json_t *v = json_object_get(obj, field);
    if (!v) {
        eie_err_set(err, "%s: missing", field);
        return -1;
    }
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && timefmt_parse_rfc3339(json_string_value(v), out) == 0)
        return 0;
    eie_err_set(err, "%s: must be an RFC 3339 time (2026-02-09T13:08:00Z) or epoch milliseconds",
                field);
    return -1;
}

/* Whether name is a field of kind and of no other kind. */
static int field_only_of(reading_kind kind, const char *name)
{
    int found = 0;
    for (int k = 0; k < READING_KIND_COUNT; k++)
        for (size_t i = 0; i < field_lists[k].n; i++)
            if (strcmp(field_lists[k].fields[i].name, name) == 0) {
                if (k != (int)kind)
                    return 0;
                found = 1;
            }
    return found;
}

/* The kind is told by any field that only one kind has. */
static int detect_kind(const json_t *obj, eie_err *err)
{
    for (int k = 0; k < READING_KIND_COUNT; k++)
        for (size_t i = 0; i < field_lists[k].n; i++)
            if (field_only_of((reading_kind)k, field_lists[k].fields[i].name) &&
                json_object_get(obj, field_lists[k].fields[i].name))
                return k;
    strbuf expected = STRBUF_INIT;
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        strbuf_printf(&expected, "%s%s fields (", k ? ", " : "", kind_names[k]);
        for (size_t i = 0; i < field_lists[k].n; i++)
            strbuf_printf(&expected, "%s%s", i ? ", " : "", field_lists[k].fields[i].name);
        strbuf_printf(&expected, ")");
    }
    eie_err_set(err, "cannot tell the kind of reading: expected %s", expected.data);
    strbuf_free(&expected);
    return -1;
}

int reading_from_json(const json_t *obj, int kind, reading *out, eie_err *err)
{
    if (!json_is_object(obj)) {
        eie_err_set(err, "a reading must be a JSON object");
        return -1;
    }
    if (kind < 0 && (kind = detect_kind(obj, err)) < 0)
        return -1;
    if (kind >= READING_KIND_COUNT) {
        eie_err_set(err, "unknown reading kind %d", kind);
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->kind = (reading_kind)kind;
    size_t n;
    const reading_field *fields = reading_fields(out->kind, &n);
    for (const reading_field *f = fields; f < fields + n; f++) {
        void *v = (char *)out + f->offset;
        const json_t *given = json_object_get(obj, f->name);
        if (reading_field_optional(f->type) && (!given || json_is_null(given)))
            continue;
        int rc = 0;
        switch (f->type) {
        case FIELD_ID:
        case FIELD_OPT_ID:
            rc = get_id(obj, f->name, v, err);
            break;
        case FIELD_DOUBLE:
            rc = get_number(obj, f->name, v, err);
            break;
        case FIELD_TIME:
            rc = get_time(obj, f->name, v, err);
            break;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

json_t *reading_to_json(const reading *r)
{
    json_t *obj = json_object();
    size_t n;
    const reading_field *fields = reading_fields(r->kind, &n);
    for (const reading_field *f = fields; obj && f < fields + n; f++) {
        const void *v = field_ptr(r, f);
        json_t *value = NULL;
        switch (f->type) {
        case FIELD_OPT_ID:
            if (!*(const char *)v)
                continue;
            /* fall through */
        case FIELD_ID:
            value = json_string(v);
            break;
        case FIELD_DOUBLE:
            value = json_real(*(const double *)v);
            break;
        case FIELD_TIME: {
            char when[TIMEFMT_RFC3339_LEN];
            timefmt_format_rfc3339(*(const int64_t *)v, when);
            value = json_string(when);
            break;
        }
        }
        if (!value || json_object_set_new(obj, f->name, value) < 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

uint64_t reading_hash_id(reading_kind kind, const char *id)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)kind;
    for (const char *c = id; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    return h;
}
