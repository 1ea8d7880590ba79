/* Unit tests of the telemetry model: JSON parsing and the validation rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "reading.h"
#include "timefmt.h"

#define NOW 1770642480000LL /* 2026-02-09T13:08:00Z */

static int parse(const char *json, int kind, reading *r, eie_err *err)
{
    json_t *obj = json_loads(json, 0, NULL);
    int rc = reading_from_json(obj, kind, r, err);
    json_decref(obj);
    return rc;
}

static void test_parses_each_kind(void **state)
{
    reading r;
    eie_err err;
    assert_int_equal(parse("{\"meterId\":\"M1\",\"kwhConsumedAc\":10,\"voltage\":230,"
                           "\"timestamp\":\"2026-02-09T13:08:00Z\"}", -1, &r, &err), 0);
    assert_int_equal(r.kind, READING_METER);
    assert_string_equal(r.u.meter.meter_id, "M1");
    assert_true(r.u.meter.kwh_consumed_ac == 10.0 && r.u.meter.voltage == 230.0);
    assert_true(r.u.meter.ts_ms == NOW);

    assert_int_equal(parse("{\"vehicleId\":\"V1\",\"soc\":80.5,\"kwhDeliveredDc\":9,"
                           "\"batteryTemp\":34.2,\"timestamp\":1770642480000}", -1, &r, &err), 0);
    assert_int_equal(r.kind, READING_VEHICLE);
    assert_true(r.u.vehicle.soc == 80.5 && r.u.vehicle.battery_temp == 34.2);
    assert_true(r.u.vehicle.ts_ms == NOW);

    assert_int_equal(parse("{\"vehicleId\":\"V1\",\"meterId\":\"M1\","
                           "\"validFrom\":\"2026-02-09T14:08:00+01:00\"}", -1, &r, &err), 0);
    assert_int_equal(r.kind, READING_ASSIGNMENT);
    assert_true(r.u.assignment.valid_from_ms == NOW);
    assert_int_equal(reading_validate(&r, NOW, &err), 0);
}

static void test_rejects_bad_json_fields(void **state)
{
    reading r;
    eie_err err;
    assert_int_equal(parse("[1]", -1, &r, &err), -1);
    assert_int_equal(parse("{\"foo\":1}", -1, &r, &err), -1);
    assert_non_null(strstr(err.msg, "cannot tell the kind"));
    assert_int_equal(parse("{\"meterId\":\"M1\",\"kwhConsumedAc\":\"10\",\"voltage\":230,"
                           "\"timestamp\":1770642480000}", -1, &r, &err), -1);
    assert_string_equal(err.msg, "kwhConsumedAc: must be a number");
    assert_int_equal(parse("{\"meterId\":\"M1\",\"kwhConsumedAc\":1,\"voltage\":230}", -1, &r, &err), -1);
    assert_string_equal(err.msg, "timestamp: missing");
    assert_int_equal(parse("{\"meterId\":\"M1\",\"kwhConsumedAc\":1,\"voltage\":230,"
                           "\"timestamp\":\"yesterday\"}", -1, &r, &err), -1);
    assert_non_null(strstr(err.msg, "timestamp: must be an RFC 3339 time"));
    assert_int_equal(parse("{\"meterId\":\"0123456789012345678901234567890123456789012345678901234567890123X\","
                           "\"kwhConsumedAc\":1,\"voltage\":230,\"timestamp\":1770642480000}", -1, &r, &err), -1);
    assert_string_equal(err.msg, "meterId: longer than 64 bytes");
    /* A vehicle line given where meters are expected names the missing field. */
    assert_int_equal(parse("{\"vehicleId\":\"V1\",\"soc\":1,\"kwhDeliveredDc\":1,\"batteryTemp\":1,"
                           "\"timestamp\":1770642480000}", READING_METER, &r, &err), -1);
    assert_string_equal(err.msg, "meterId: missing");
}

static void expect_invalid(reading *r, const char *message_part)
{
    eie_err err;
    assert_int_equal(reading_validate(r, NOW, &err), -1);
    if (!strstr(err.msg, message_part))
        fail_msg("expected '%s' in '%s'", message_part, err.msg);
}

static void test_validation_rules(void **state)
{
    reading base = {.kind = READING_VEHICLE}, r;
    strcpy(base.u.vehicle.vehicle_id, "V1");
    base.u.vehicle.soc = 50;
    base.u.vehicle.kwh_delivered_dc = 1;
    base.u.vehicle.battery_temp = 30;
    base.u.vehicle.ts_ms = NOW;
    eie_err err;
    assert_int_equal(reading_validate(&base, NOW, &err), 0);

    r = base; r.u.vehicle.soc = 100.5;            expect_invalid(&r, "soc:");
    r = base; r.u.vehicle.soc = -0.1;             expect_invalid(&r, "soc:");
    r = base; r.u.vehicle.soc = NAN;              expect_invalid(&r, "soc: must be a finite number");
    r = base; r.u.vehicle.kwh_delivered_dc = -1;  expect_invalid(&r, "kwhDeliveredDc:");
    r = base; r.u.vehicle.kwh_delivered_dc = INFINITY; expect_invalid(&r, "finite");
    r = base; r.u.vehicle.battery_temp = 200;     expect_invalid(&r, "batteryTemp:");
    r = base; r.u.vehicle.battery_temp = -80;     expect_invalid(&r, "batteryTemp:");
    r = base; r.u.vehicle.ts_ms = NOW + 5 * 60 * 1000 + 1; expect_invalid(&r, "future");
    r = base; r.u.vehicle.ts_ms = NOW + 5 * 60 * 1000;
    assert_int_equal(reading_validate(&r, NOW, &err), 0);
    r = base; r.u.vehicle.ts_ms = 946684799999LL; expect_invalid(&r, "before 2000");
    r = base; r.u.vehicle.vehicle_id[0] = '\0';   expect_invalid(&r, "vehicleId: must not be empty");
    r = base; strcpy(r.u.vehicle.vehicle_id, "V\n1"); expect_invalid(&r, "control characters");
    r = base; strcpy(r.u.vehicle.vehicle_id, "V\xff"); expect_invalid(&r, "not valid UTF-8");
    r = base; strcpy(r.u.vehicle.vehicle_id, "V\xc3"); expect_invalid(&r, "not valid UTF-8");
    r = base; strcpy(r.u.vehicle.vehicle_id, "\xed\xa0\x80"); expect_invalid(&r, "not valid UTF-8");
    r = base; strcpy(r.u.vehicle.vehicle_id, "V\xc3\xa9hicule-\xf0\x9f\x9a\x97");
    assert_int_equal(reading_validate(&r, NOW, &err), 0);

    reading m = {.kind = READING_METER};
    strcpy(m.u.meter.meter_id, "M1");
    m.u.meter.kwh_consumed_ac = 0.2;
    m.u.meter.voltage = 230;
    m.u.meter.ts_ms = NOW;
    assert_int_equal(reading_validate(&m, NOW, &err), 0);
    r = m; r.u.meter.voltage = -1;         expect_invalid(&r, "voltage:");
    r = m; r.u.meter.voltage = 5000;       expect_invalid(&r, "voltage:");
    r = m; r.u.meter.kwh_consumed_ac = -0.01; expect_invalid(&r, "kwhConsumedAc:");

    /* The bounds themselves are valid; a step past them is not. */
    r = m; r.u.meter.kwh_consumed_ac = 100;
    assert_int_equal(reading_validate(&r, NOW, &err), 0);
    r = m; r.u.meter.kwh_consumed_ac = 100.001; expect_invalid(&r, "kwhConsumedAc: 100.001 is outside 0..100 kWh");
    r = m; r.u.meter.kwh_consumed_ac = 0;
    assert_int_equal(reading_validate(&r, NOW, &err), 0);
    r = m; r.u.meter.voltage = 1500;
    assert_int_equal(reading_validate(&r, NOW, &err), 0);
    r = m; r.u.meter.voltage = 1500.01;    expect_invalid(&r, "voltage:");
    r = base; r.u.vehicle.kwh_delivered_dc = 100;
    assert_int_equal(reading_validate(&r, NOW, &err), 0);
    r = base; r.u.vehicle.kwh_delivered_dc = 100.001; expect_invalid(&r, "kwhDeliveredDc: 100.001 is outside 0..100 kWh");
    r = base; r.u.vehicle.soc = 100;
    assert_int_equal(reading_validate(&r, NOW, &err), 0);
    r = base; r.u.vehicle.battery_temp = 120;
    assert_int_equal(reading_validate(&r, NOW, &err), 0);
    r = base; r.u.vehicle.battery_temp = 120.1;   expect_invalid(&r, "batteryTemp:");
    r = base; r.u.vehicle.battery_temp = -60;
    assert_int_equal(reading_validate(&r, NOW, &err), 0);
    r = base; r.u.vehicle.battery_temp = -60.1;   expect_invalid(&r, "batteryTemp:");
    r = base; r.u.vehicle.ts_ms = 946684800000LL; /* 2000-01-01T00:00:00Z */
    assert_int_equal(reading_validate(&r, NOW, &err), 0);
    /* Ids: 1 to 64 bytes. */
    r = base; memset(r.u.vehicle.vehicle_id, 'V', 64); r.u.vehicle.vehicle_id[64] = '\0';
    assert_int_equal(reading_validate(&r, NOW, &err), 0);
}

static void test_json_round_trip(void **state)
{
    reading r, back;
    eie_err err;
    assert_int_equal(parse("{\"vehicleId\":\"V1\",\"soc\":80.5,\"kwhDeliveredDc\":9,"
                           "\"batteryTemp\":34.2,\"timestamp\":\"2026-02-09T13:08:00.250Z\"}",
                           -1, &r, &err), 0);
    json_t *j = reading_to_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "timestamp")), "2026-02-09T13:08:00.250Z");
    assert_int_equal(reading_from_json(j, -1, &back, &err), 0);
    assert_memory_equal(&r, &back, sizeof r);
    json_decref(j);
}

static void test_timefmt(void **state)
{
    int64_t ms;
    char buf[TIMEFMT_RFC3339_LEN];
    assert_int_equal(timefmt_parse_rfc3339("1970-01-01T00:00:00Z", &ms), 0);
    assert_true(ms == 0);
    assert_int_equal(timefmt_parse_rfc3339("2000-02-29T23:59:59.999Z", &ms), 0);
    timefmt_format_rfc3339(ms, buf);
    assert_string_equal(buf, "2000-02-29T23:59:59.999Z");
    assert_int_equal(timefmt_parse_rfc3339("1969-12-31T23:59:59Z", &ms), 0);
    assert_true(ms == -1000);
    timefmt_format_rfc3339(-1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    assert_true(timefmt_day(-1) == -1 && timefmt_day(0) == 0 && timefmt_day(86399999) == 0);
    timefmt_format_pg(NOW, buf);
    assert_string_equal(buf, "2026-02-09 13:08:00.000+00");
    const char *bad[] = {"", "2026-02-30T00:00:00Z", "2026-02-09T13:08:00", "2026-02-09T24:00:00Z",
                         "2026-13-01T00:00:00Z", "2026-02-09T13:08:00Zjunk", "2026-2-9T13:08:00Z",
                         "2026-02-09T13:08:00.Z", "2026-02-09T13:08:00+0100"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (timefmt_parse_rfc3339(bad[i], &ms) == 0)
            fail_msg("accepted '%s'", bad[i]);
}

/* Any int64 formats within the buffer (fuzz_timefmt found INT64_MIN negated
 * and the pg form of extreme years written past it). */
static void test_timefmt_extremes(void **state)
{
    char buf[TIMEFMT_RFC3339_LEN];
    assert_true(timefmt_day(INT64_MIN) == INT64_MIN / 86400000 - 1);
    assert_true(timefmt_day(-86400000) == -1 && timefmt_day(-86400001) == -2);
    timefmt_format_rfc3339(INT64_MIN, buf);
    assert_string_equal(buf, "-292275055-05-16T16:47:04.192Z");
    timefmt_format_pg(INT64_MIN, buf);
    assert_string_equal(buf, "-292275055-05-16 16:47:04.192+00");
    timefmt_format_pg(INT64_MAX, buf);
    assert_string_equal(buf, "292278994-08-17 07:12:55.807+00");
}

/* reading_time_ms names each kind's time member: it must be the one its
 * field list marks FIELD_TIME. */
static void test_time_is_the_listed_time_field(void **state)
{
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        reading r;
        memset(&r, 0, sizeof r);
        r.kind = (reading_kind)k;
        size_t n;
        const reading_field *f = reading_fields(r.kind, &n);
        int times = 0;
        for (size_t i = 0; i < n; i++) {
            if (f[i].type != FIELD_TIME)
                continue;
            int64_t t = 1770642480000LL + k;
            memcpy((char *)&r + f[i].offset, &t, sizeof t);
            assert_int_equal(reading_time_ms(&r), t);
            times++;
        }
        assert_int_equal(times, 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_each_kind),
        cmocka_unit_test(test_rejects_bad_json_fields),
        cmocka_unit_test(test_validation_rules),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_timefmt),
        cmocka_unit_test(test_timefmt_extremes),
        cmocka_unit_test(test_time_is_the_listed_time_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
