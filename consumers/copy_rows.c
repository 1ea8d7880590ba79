/* Binary COPY rows; see copy_rows.h. The format is described in PostgreSQL's
 * documentation of COPY ("Binary Format"): a signature and two 32-bit words,
 * then per row a 16-bit field count and per field a 32-bit length and the
 * value in the type's send format (big-endian), then a 16-bit -1. */
#include "copy_rows.h"

#include <string.h>

/* timestamptz is sent as microseconds since 2000-01-01 00:00:00 UTC. */
#define PG_EPOCH_MS 946684800000LL

const char *copy_rows_columns(reading_kind kind)
{
    switch (kind) {
    case READING_METER:
        return "(meter_id, ts, kwh_consumed_ac, voltage)";
    case READING_VEHICLE:
        return "(vehicle_id, ts, soc, kwh_delivered_dc, battery_temp, charger_id)";
    case READING_ASSIGNMENT:
        return "(vehicle_id, valid_from, meter_id)";
    }
    return "";
}

static void put_be(strbuf *out, uint64_t v, int bytes)
{
    char b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (char)(v >> (8 * (bytes - 1 - i)));
    strbuf_append(out, b, (size_t)bytes);
}

static void field_text(strbuf *out, const char *s)
{
    size_t len = strlen(s);
    put_be(out, len, 4);
    strbuf_append(out, s, len);
}

/* Text, or SQL NULL for "". */
static void field_optional_text(strbuf *out, const char *s)
{
    if (*s)
        field_text(out, s);
    else
        put_be(out, 0xffffffffu, 4); /* length -1 */
}

static void field_double(strbuf *out, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_be(out, 8, 4);
    put_be(out, bits, 8);
}

static void field_time(strbuf *out, int64_t ms)
{
    put_be(out, 8, 4);
    put_be(out, (uint64_t)((ms - PG_EPOCH_MS) * 1000), 8);
}

void copy_rows_begin(strbuf *out)
{
    strbuf_append(out, "PGCOPY\n\377\r\n\0", 11);
    put_be(out, 0, 4); /* flags: no OIDs */
    put_be(out, 0, 4); /* header extension length */
}

void copy_rows_append(strbuf *out, const reading *r)
{
    strbuf_reserve(out, 128);
    switch (r->kind) {
    case READING_METER:
        put_be(out, 4, 2);
        field_text(out, r->u.meter.meter_id);
        field_time(out, r->u.meter.ts_ms);
        field_double(out, r->u.meter.kwh_consumed_ac);
        field_double(out, r->u.meter.voltage);
        break;
    case READING_VEHICLE:
        put_be(out, 6, 2);
        field_text(out, r->u.vehicle.vehicle_id);
        field_time(out, r->u.vehicle.ts_ms);
        field_double(out, r->u.vehicle.soc);
        field_double(out, r->u.vehicle.kwh_delivered_dc);
        field_double(out, r->u.vehicle.battery_temp);
        field_optional_text(out, r->u.vehicle.charger_id);
        break;
    case READING_ASSIGNMENT:
        put_be(out, 3, 2);
        field_text(out, r->u.assignment.vehicle_id);
        field_time(out, r->u.assignment.valid_from_ms);
        field_text(out, r->u.assignment.meter_id);
        break;
    }
}

void copy_rows_end(strbuf *out)
{
    put_be(out, 0xffff, 2);
}
