/* The telemetry model: meter readings (grid side, AC), vehicle readings (DC side)
 * and vehicle-to-meter assignments, with the one set of validation rules that the
 * producers, the consumers and the HTTP ingest all apply. */
#ifndef EIE_READING_H
#define EIE_READING_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Device ids are 1..64 bytes of UTF-8. */
#define READING_ID_MAX 64

typedef enum { READING_METER = 0, READING_VEHICLE = 1, READING_ASSIGNMENT = 2 } reading_kind;
#define READING_KIND_COUNT 3

/* Physical and sanity limits. One 60 s interval of the largest DC fast charger
 * (350 kW) is under 6 kWh; 100 kWh leaves room for meters that report longer
 * intervals while rejecting garbage. Voltages cover low-voltage AC and 1000 V
 * DC chargers. now_ms bounds how far in the future a timestamp may lie. */
#define READING_MAX_INTERVAL_KWH 100.0
#define READING_MAX_VOLTAGE 1500.0
#define READING_MAX_FUTURE_MS (5 * 60 * 1000)
#define READING_MIN_TIME_MS 946684800000LL /* 2000-01-01T00:00:00Z */

/* How a field is held, sent and stored. An optional id is absent as "" in C,
 * null in Avro (a ["null", "string"] union with a null default), NULL in
 * PostgreSQL and left out of JSON. */
typedef enum {
    FIELD_ID,         /* char[READING_ID_MAX + 1]; Avro string; text */
    FIELD_OPT_ID,     /* the same, optional */
    FIELD_DOUBLE,     /* double; Avro double; double precision */
    FIELD_TIME,       /* int64_t epoch ms; Avro long; timestamptz */
} reading_field_type;

/* The one description of each reading kind. Every field's C member, its name
 * in JSON, CSV and Avro, its PostgreSQL column, its type and its valid range
 * (numbers only) are listed here once; the structs below, validation, the JSON
 * and CSV readers, the codec, the COPY rows, the hot store's upserts and
 * eie-admin verify are driven by these lists. A new field is a line here, a
 * schema version (schemas/avro) and a migration (schemas/sql).
 * The first field is the device (the Kafka key and the hot store's key); each
 * kind has one FIELD_TIME, its event time.
 * X(member, name, column, type, min, max, unit) */
#define READING_METER_FIELDS(X)                                                                   \
    X(meter_id, "meterId", "meter_id", FIELD_ID, 0, 0, "")                                        \
    X(kwh_consumed_ac, "kwhConsumedAc", "kwh_consumed_ac", FIELD_DOUBLE, 0,                       \
      READING_MAX_INTERVAL_KWH, "kWh") /* drawn from the grid in the interval */                  \
    X(voltage, "voltage", "voltage", FIELD_DOUBLE, 0, READING_MAX_VOLTAGE, "V")                   \
    X(ts_ms, "timestamp", "ts", FIELD_TIME, 0, 0, "")

#define READING_VEHICLE_FIELDS(X)                                                                 \
    X(vehicle_id, "vehicleId", "vehicle_id", FIELD_ID, 0, 0, "")                                  \
    X(soc, "soc", "soc", FIELD_DOUBLE, 0, 100, "%") /* state of charge */                         \
    X(kwh_delivered_dc, "kwhDeliveredDc", "kwh_delivered_dc", FIELD_DOUBLE, 0,                    \
      READING_MAX_INTERVAL_KWH, "kWh") /* delivered to the battery in the interval */             \
    X(battery_temp, "batteryTemp", "battery_temp", FIELD_DOUBLE, -60, 120, "°C")                  \
    X(ts_ms, "timestamp", "ts", FIELD_TIME, 0, 0, "")                                             \
    X(charger_id, "chargerId", "charger_id", FIELD_OPT_ID, 0, 0, "") /* since schema v2 */

#define READING_ASSIGNMENT_FIELDS(X)                                                              \
    X(vehicle_id, "vehicleId", "vehicle_id", FIELD_ID, 0, 0, "")                                  \
    X(meter_id, "meterId", "meter_id", FIELD_ID, 0, 0, "")                                        \
    X(valid_from_ms, "validFrom", "valid_from", FIELD_TIME, 0, 0, "")

#define READING_CTYPE_FIELD_ID(member) char member[READING_ID_MAX + 1];
#define READING_CTYPE_FIELD_OPT_ID(member) char member[READING_ID_MAX + 1];
#define READING_CTYPE_FIELD_DOUBLE(member) double member;
#define READING_CTYPE_FIELD_TIME(member) int64_t member;
#define READING_MEMBER(member, name, column, type, min, max, unit) READING_CTYPE_##type(member)

typedef struct meter_reading {
    READING_METER_FIELDS(READING_MEMBER)
} meter_reading;

typedef struct vehicle_reading {
    READING_VEHICLE_FIELDS(READING_MEMBER)
} vehicle_reading;

typedef struct vehicle_assignment {
    READING_ASSIGNMENT_FIELDS(READING_MEMBER)
} vehicle_assignment;

typedef struct reading {
    reading_kind kind;
    union {
        meter_reading meter;
        vehicle_reading vehicle;
        vehicle_assignment assignment;
    } u;
} reading;

/* One field of the description above. */
typedef struct reading_field {
    const char *name;   /* in JSON, CSV and Avro */
    const char *column; /* in PostgreSQL */
    reading_field_type type;
    size_t offset; /* of the member in struct reading */
    double min, max;
    const char *unit;
} reading_field;

/* The fields of a kind, in the order of the lists above; *n is their count. */
const reading_field *reading_fields(reading_kind kind, size_t *n);
/* Whether a field of that type may be absent. */
int reading_field_optional(reading_field_type type);

/* "meter", "vehicle", "assignment". */
const char *reading_kind_name(reading_kind kind);
/* Returns -1 when name is none of those. */
int reading_kind_parse(const char *name, reading_kind *out);

/* The device the reading is about, which is also its Kafka key: the meter id of a
 * meter reading, the vehicle id otherwise. */
const char *reading_key(const reading *r);

/* A hash of a device: its kind and id (FNV-1a), for in-memory tables keyed by
 * device. */
uint64_t reading_hash_id(reading_kind kind, const char *id);
/* The event time of the reading (validFrom for an assignment). */
int64_t reading_time_ms(const reading *r);

/* Checks the limits of the description above. A reading outside them is
 * rejected, with the field and the reason in err. */
int reading_validate(const reading *r, int64_t now_ms, eie_err *err);

/* Builds a reading from a JSON object with the field names of the description
 * above; optional fields may be missing or null. Timestamps are RFC 3339
 * strings or epoch milliseconds. With kind < 0 the kind is told from the fields.
 * Checks types and presence only; call reading_validate for the value rules. */
int reading_from_json(const json_t *obj, int kind, reading *out, eie_err *err);

/* The reverse, with timestamps as RFC 3339 strings. Returns a new reference. */
json_t *reading_to_json(const reading *r);

#endif
