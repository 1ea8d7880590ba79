/* The telemetry model: meter readings (grid side, AC), vehicle readings (DC side)
 * and vehicle-to-meter assignments, with the one set of validation rules that the
 * producers, the consumers and the HTTP ingest all apply. */
#ifndef EIE_READING_H
#define EIE_READING_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"

/* Device ids are 1..64 bytes of UTF-8. */
#define READING_ID_MAX 64

typedef enum { READING_METER = 0, READING_VEHICLE = 1, READING_ASSIGNMENT = 2 } reading_kind;
#define READING_KIND_COUNT 3

typedef struct meter_reading {
    char meter_id[READING_ID_MAX + 1];
    double kwh_consumed_ac; /* energy drawn from the grid in the interval */
    double voltage;
    int64_t ts_ms;
} meter_reading;

typedef struct vehicle_reading {
    char vehicle_id[READING_ID_MAX + 1];
    double soc;              /* state of charge, percent */
    double kwh_delivered_dc; /* energy delivered to the battery in the interval */
    double battery_temp;     /* degrees Celsius */
    int64_t ts_ms;
    char charger_id[READING_ID_MAX + 1]; /* since schema v2; "" when not known */
} vehicle_reading;

typedef struct vehicle_assignment {
    char vehicle_id[READING_ID_MAX + 1];
    char meter_id[READING_ID_MAX + 1];
    int64_t valid_from_ms;
} vehicle_assignment;

typedef struct reading {
    reading_kind kind;
    union {
        meter_reading meter;
        vehicle_reading vehicle;
        vehicle_assignment assignment;
    } u;
} reading;

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

/* Physical and sanity limits. A reading outside them is rejected, with the field
 * and the reason in err. now_ms bounds how far in the future a timestamp may lie. */
#define READING_MAX_FUTURE_MS (5 * 60 * 1000)
#define READING_MIN_TIME_MS 946684800000LL /* 2000-01-01T00:00:00Z */
int reading_validate(const reading *r, int64_t now_ms, eie_err *err);

/* Builds a reading from a JSON object with the field names clients use
 * (meterId, kwhConsumedAc, voltage, timestamp; vehicleId, soc, kwhDeliveredDc,
 * batteryTemp, timestamp and optionally chargerId; vehicleId, meterId,
 * validFrom). Timestamps are RFC 3339
 * strings or epoch milliseconds. With kind < 0 the kind is told from the fields.
 * Checks types and presence only; call reading_validate for the value rules. */
int reading_from_json(const json_t *obj, int kind, reading *out, eie_err *err);

/* The reverse, with timestamps as RFC 3339 strings. Returns a new reference. */
json_t *reading_to_json(const reading *r);

#endif
