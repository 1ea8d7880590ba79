/* COPY text rows; see copy_rows.h. */
#include "copy_rows.h"

#include "pg.h"
#include "timefmt.h"

const char *copy_rows_columns(reading_kind kind)
{
    switch (kind) {
    case READING_METER:
        return "(meter_id, ts, kwh_consumed_ac, voltage)";
    case READING_VEHICLE:
        return "(vehicle_id, ts, soc, kwh_delivered_dc, battery_temp)";
    case READING_ASSIGNMENT:
        return "(vehicle_id, valid_from, meter_id)";
    }
    return "";
}

void copy_rows_append(strbuf *out, const reading *r)
{
    char ts[TIMEFMT_RFC3339_LEN];
    timefmt_format_pg(reading_time_ms(r), ts);
    /* %.17g round-trips every double exactly; PostgreSQL prints them shortest. */
    switch (r->kind) {
    case READING_METER:
        pg_copy_escape(out, r->u.meter.meter_id);
        strbuf_printf(out, "\t%s\t%.17g\t%.17g\n", ts, r->u.meter.kwh_consumed_ac,
                      r->u.meter.voltage);
        break;
    case READING_VEHICLE:
        pg_copy_escape(out, r->u.vehicle.vehicle_id);
        strbuf_printf(out, "\t%s\t%.17g\t%.17g\t%.17g\n", ts, r->u.vehicle.soc,
                      r->u.vehicle.kwh_delivered_dc, r->u.vehicle.battery_temp);
        break;
    case READING_ASSIGNMENT:
        pg_copy_escape(out, r->u.assignment.vehicle_id);
        strbuf_printf(out, "\t%s\t", ts);
        pg_copy_escape(out, r->u.assignment.meter_id);
        strbuf_putc(out, '\n');
        break;
    }
}
