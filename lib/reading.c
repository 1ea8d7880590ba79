/* The telemetry model and its validation rules; see reading.h. */
#include "reading.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "timefmt.h"

static const char *const kind_names[READING_KIND_COUNT] = {"meter", "vehicle", "assignment"};

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
    return r->kind == READING_METER ? r->u.meter.meter_id
           : r->kind == READING_VEHICLE ? r->u.vehicle.vehicle_id
                                        : r->u.assignment.vehicle_id;
}

int64_t reading_time_ms(const reading *r)
{
    return r->kind == READING_METER ? r->u.meter.ts_ms
           : r->kind == READING_VEHICLE ? r->u.vehicle.ts_ms
                                        : r->u.assignment.valid_from_ms;
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

/* Limits: one 60 s interval of the largest DC fast charger (350 kW) is under 6 kWh;
 * 100 kWh leaves room for meters that report longer intervals while rejecting
 * garbage. Voltages cover low-voltage AC and 1000 V DC chargers. */
#define MAX_INTERVAL_KWH 100.0
#define MAX_VOLTAGE 1500.0
#define MIN_BATTERY_TEMP (-60.0)
#define MAX_BATTERY_TEMP 120.0

int reading_validate(const reading *r, int64_t now_ms, eie_err *err)
{
    switch (r->kind) {
    case READING_METER: {
        const meter_reading *m = &r->u.meter;
        if (check_id("meterId", m->meter_id, err) ||
            check_range("kwhConsumedAc", m->kwh_consumed_ac, 0, MAX_INTERVAL_KWH, "kWh", err) ||
            check_range("voltage", m->voltage, 0, MAX_VOLTAGE, "V", err) ||
            check_time("timestamp", m->ts_ms, now_ms, err))
            return -1;
        return 0;
    }
    case READING_VEHICLE: {
        const vehicle_reading *v = &r->u.vehicle;
        if (check_id("vehicleId", v->vehicle_id, err) ||
            check_range("soc", v->soc, 0, 100, "%", err) ||
            check_range("kwhDeliveredDc", v->kwh_delivered_dc, 0, MAX_INTERVAL_KWH, "kWh", err) ||
            check_range("batteryTemp", v->battery_temp, MIN_BATTERY_TEMP, MAX_BATTERY_TEMP, "°C",
                        err) ||
            check_time("timestamp", v->ts_ms, now_ms, err) ||
            (v->charger_id[0] && check_id("chargerId", v->charger_id, err)))
            return -1;
        return 0;
    }
    case READING_ASSIGNMENT: {
        const vehicle_assignment *a = &r->u.assignment;
        if (check_id("vehicleId", a->vehicle_id, err) || check_id("meterId", a->meter_id, err) ||
            check_time("validFrom", a->valid_from_ms, now_ms, err))
            return -1;
        return 0;
    }
    }
    eie_err_set(err, "unknown reading kind %d", (int)r->kind);
    return -1;
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

static int detect_kind(const json_t *obj, eie_err *err)
{
    if (json_object_get(obj, "validFrom"))
        return READING_ASSIGNMENT;
    if (json_object_get(obj, "soc") || json_object_get(obj, "kwhDeliveredDc"))
        return READING_VEHICLE;
    if (json_object_get(obj, "kwhConsumedAc") || json_object_get(obj, "voltage"))
        return READING_METER;
    eie_err_set(err, "cannot tell the kind of reading: expected meter fields (meterId, "
                     "kwhConsumedAc, voltage, timestamp), vehicle fields (vehicleId, soc, "
                     "kwhDeliveredDc, batteryTemp, timestamp) or an assignment (vehicleId, "
                     "meterId, validFrom)");
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
    memset(out, 0, sizeof *out);
    out->kind = (reading_kind)kind;
    switch (out->kind) {
    case READING_METER: {
        meter_reading *m = &out->u.meter;
        return get_id(obj, "meterId", m->meter_id, err) ||
                       get_number(obj, "kwhConsumedAc", &m->kwh_consumed_ac, err) ||
                       get_number(obj, "voltage", &m->voltage, err) ||
                       get_time(obj, "timestamp", &m->ts_ms, err)
                   ? -1
                   : 0;
    }
    case READING_VEHICLE: {
        vehicle_reading *v = &out->u.vehicle;
        return get_id(obj, "vehicleId", v->vehicle_id, err) ||
                       get_number(obj, "soc", &v->soc, err) ||
                       get_number(obj, "kwhDeliveredDc", &v->kwh_delivered_dc, err) ||
                       get_number(obj, "batteryTemp", &v->battery_temp, err) ||
                       get_time(obj, "timestamp", &v->ts_ms, err) ||
                       (!json_is_null(json_object_get(obj, "chargerId")) &&
                        json_object_get(obj, "chargerId") &&
                        get_id(obj, "chargerId", v->charger_id, err))
                   ? -1
                   : 0;
    }
    case READING_ASSIGNMENT: {
        vehicle_assignment *a = &out->u.assignment;
        return get_id(obj, "vehicleId", a->vehicle_id, err) ||
                       get_id(obj, "meterId", a->meter_id, err) ||
                       get_time(obj, "validFrom", &a->valid_from_ms, err)
                   ? -1
                   : 0;
    }
    }
    eie_err_set(err, "unknown reading kind %d", kind);
    return -1;
}

json_t *reading_to_json(const reading *r)
{
    char when[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(reading_time_ms(r), when);
    switch (r->kind) {
    case READING_METER:
        return json_pack("{s:s, s:f, s:f, s:s}", "meterId", r->u.meter.meter_id, "kwhConsumedAc",
                         r->u.meter.kwh_consumed_ac, "voltage", r->u.meter.voltage, "timestamp",
                         when);
    case READING_VEHICLE: {
        json_t *obj = json_pack("{s:s, s:f, s:f, s:f, s:s}", "vehicleId", r->u.vehicle.vehicle_id,
                                "soc", r->u.vehicle.soc, "kwhDeliveredDc",
                                r->u.vehicle.kwh_delivered_dc, "batteryTemp",
                                r->u.vehicle.battery_temp, "timestamp", when);
        if (obj && r->u.vehicle.charger_id[0])
            json_object_set_new(obj, "chargerId", json_string(r->u.vehicle.charger_id));
        return obj;
    }
    case READING_ASSIGNMENT:
        return json_pack("{s:s, s:s, s:s}", "vehicleId", r->u.assignment.vehicle_id, "meterId",
                         r->u.assignment.meter_id, "validFrom", when);
    }
    return NULL;
}

uint64_t reading_hash_id(reading_kind kind, const char *id)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)kind;
    for (const char *c = id; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    return h;
}
