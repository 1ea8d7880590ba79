/* Unit tests of the hot store's commit notices (lib/hot_notice.h): the
 * readings the sink puts in them come out of the cache's round the same, to
 * the bit, in payloads PostgreSQL accepts; whatever the cache cannot take from
 * them sends it to read the tables by stamp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hot_notice.h"

#define STAMP "1764583200123456"

typedef struct taken {
    reading *rows;
    size_t n, cap;
} taken;

static void keep(void *arg, const reading *r)
{
    taken *t = arg;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->rows = realloc(t->rows, t->cap * sizeof *t->rows);
        assert_non_null(t->rows);
    }
    t->rows[t->n++] = *r;
}

/* Every payload of w, each after STAMP, taken into r. */
static void take_all(hot_notice_writer *w, hot_notice_round *r, taken *t)
{
    const char *payloads[HOT_NOTICE_MAX_NOTICES];
    int n = hot_notice_payloads(w, payloads);
    assert_true(n >= 1 && n <= HOT_NOTICE_MAX_NOTICES);
    for (int i = 0; i < n; i++) {
        char payload[8192];
        int len = snprintf(payload, sizeof payload, STAMP "%s", payloads[i]);
        assert_true(len < 8000); /* PostgreSQL's limit */
        hot_notice_take(r, payload, keep, t);
    }
}

static reading vehicle(const char *id, int64_t ts, double soc, double kwh, double temp)
{
    reading r = {.kind = READING_VEHICLE};
    snprintf(r.u.vehicle.vehicle_id, sizeof r.u.vehicle.vehicle_id, "%s", id);
    r.u.vehicle.ts_ms = ts;
    r.u.vehicle.soc = soc;
    r.u.vehicle.kwh_delivered_dc = kwh;
    r.u.vehicle.battery_temp = temp;
    return r;
}

static reading meter(const char *id, int64_t ts, double kwh, double voltage)
{
    reading r = {.kind = READING_METER};
    snprintf(r.u.meter.meter_id, sizeof r.u.meter.meter_id, "%s", id);
    r.u.meter.ts_ms = ts;
    r.u.meter.kwh_consumed_ac = kwh;
    r.u.meter.voltage = voltage;
    return r;
}

static void assert_same(const reading *want, const reading *got)
{
    assert_int_equal(want->kind, got->kind);
    assert_string_equal(reading_key(want), reading_key(got));
    assert_int_equal(reading_time_ms(want), reading_time_ms(got));
    if (want->kind == READING_VEHICLE) {
        /* Bit for bit: memcmp, not a tolerance. */
        assert_memory_equal(&want->u.vehicle.soc, &got->u.vehicle.soc, sizeof(double));
        assert_memory_equal(&want->u.vehicle.kwh_delivered_dc, &got->u.vehicle.kwh_delivered_dc,
                            sizeof(double));
        assert_memory_equal(&want->u.vehicle.battery_temp, &got->u.vehicle.battery_temp,
                            sizeof(double));
    } else {
        assert_memory_equal(&want->u.meter.kwh_consumed_ac, &got->u.meter.kwh_consumed_ac,
                            sizeof(double));
        assert_memory_equal(&want->u.meter.voltage, &got->u.meter.voltage, sizeof(double));
    }
}

static void test_readings_come_back_exact(void **state)
{
    (void)state;
    char longest[READING_ID_MAX + 1];
    memset(longest, ';', READING_ID_MAX); /* every character escaped */
    longest[READING_ID_MAX] = '\0';
    const reading want[] = {
        vehicle("V1", 1764583200000, 61.25, 0.1, 34.2),
        vehicle("a,b;c\\d", 1764583200001, 1.0 / 3, 1e-300, -59.999999999999993),
        vehicle("q\"uote {brace} two words", 0, 100, 12.345678901234567, 120),
        vehicle("Zürich-7", 4102444800000, nextafter(50, 100), 0, -0.0),
        meter("M\\", 1764583200000, 0.30000000000000004, 229.99999999999997),
        meter(longest, 1764583200000, 2.5, 230),
    };
    size_t n = sizeof want / sizeof want[0];
    hot_notice_writer w = {0};
    hot_notice_round r;
    taken t = {0};
    hot_notice_writer_reset(&w);
    hot_notice_round_reset(&r);
    for (size_t i = 0; i < n; i++)
        hot_notice_add(&w, &want[i]);
    take_all(&w, &r, &t);
    assert_true(r.any);
    assert_false(r.by_stamp);
    assert_false(r.assignments);
    assert_int_equal(r.earliest_us, strtoll(STAMP, NULL, 10));
    assert_int_equal(r.rows, n);
    assert_int_equal(t.n, n);
    for (size_t i = 0; i < n; i++)
        assert_same(&want[i], &t.rows[i]);

    /* The same commit storing assignments too says so, readings intact. */
    hot_notice_writer_reset(&w);
    hot_notice_round_reset(&r);
    t.n = 0;
    for (size_t i = 0; i < n; i++)
        hot_notice_add(&w, &want[i]);
    hot_notice_assignments(&w);
    take_all(&w, &r, &t);
    assert_false(r.by_stamp);
    assert_true(r.assignments);
    assert_int_equal(t.n, n);
    for (size_t i = 0; i < n; i++)
        assert_same(&want[i], &t.rows[i]);
    free(t.rows);
    hot_notice_writer_free(&w);
}

/* Thousands of readings go in several notices, each under PostgreSQL's
 * limit, and come back in order; more than the notices hold give the stamp
 * only, and no reading. */
static void test_many_notices_then_the_stamp(void **state)
{
    (void)state;
    hot_notice_writer w = {0};
    hot_notice_round r;
    taken t = {0};
    char id[READING_ID_MAX + 1];
    hot_notice_writer_reset(&w);
    hot_notice_round_reset(&r);
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof id, "V%05d", i);
        reading v = vehicle(id, 1764583200000 + i, i / 30.0, i / 7.0, 20 + i / 100.0);
        hot_notice_add(&w, &v);
    }
    const char *payloads[HOT_NOTICE_MAX_NOTICES];
    assert_true(hot_notice_payloads(&w, payloads) > 1);
    take_all(&w, &r, &t);
    assert_false(r.by_stamp);
    assert_int_equal(t.n, 3000);
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof id, "V%05d", i);
        reading v = vehicle(id, 1764583200000 + i, i / 30.0, i / 7.0, 20 + i / 100.0);
        assert_same(&v, &t.rows[i]);
    }

    hot_notice_writer_reset(&w);
    hot_notice_round_reset(&r);
    t.n = 0;
    memset(id, ',', READING_ID_MAX);
    id[READING_ID_MAX] = '\0';
    for (int i = 0; i < 5000; i++) {
        reading m = meter(id, i, 1.0 / 3, 230.1);
        hot_notice_add(&w, &m);
    }
    assert_true(w.too_many);
    take_all(&w, &r, &t);
    assert_true(r.any);
    assert_true(r.by_stamp);
    assert_int_equal(t.n, 0);
    free(t.rows);
    hot_notice_writer_free(&w);
}

/* A commit that offered no state row says so, and asks for no read by
 * stamp; one of assignments only asks for those. */
static void test_nothing_offered(void **state)
{
    (void)state;
    hot_notice_writer w = {0};
    hot_notice_round r;
    taken t = {0};
    hot_notice_writer_reset(&w);
    hot_notice_round_reset(&r);
    take_all(&w, &r, &t);
    assert_true(r.any);
    assert_false(r.by_stamp);
    assert_false(r.assignments);
    assert_int_equal(t.n, 0);
    hot_notice_writer_reset(&w);
    hot_notice_round_reset(&r);
    hot_notice_assignments(&w);
    take_all(&w, &r, &t);
    assert_false(r.by_stamp);
    assert_true(r.assignments);
    assert_int_equal(t.n, 0);
    hot_notice_writer_free(&w);
}

/* The stamp alone, or anything this code does not know, reads by stamp from
 * the earliest commit; a payload without a stamp is no commit's. */
static void test_stamps_and_strangers(void **state)
{
    (void)state;
    hot_notice_round r;
    taken t = {0};
    hot_notice_round_reset(&r);
    hot_notice_take(&r, "not a commit", keep, &t);
    hot_notice_take(&r, "-5 v,V1,1,2,3,4", keep, &t);
    assert_false(r.any);
    hot_notice_take(&r, "2000 v,V1,1000,50,0.5,30", keep, &t);
    hot_notice_take(&r, "1000 m,M1,1000,0.5,230;m,M2,1000,0.5,231", keep, &t);
    assert_false(r.by_stamp);
    assert_int_equal(r.earliest_us, 1000);
    assert_int_equal(t.n, 3);
    static const char *const strangers[] = {
        "3000",                      /* the stamp alone: too many to say */
        "3000 x,V1,1000,50,0.5,30",  /* an unknown kind */
        "3000 v,V1,1000,50,0.5",     /* a value short */
        "3000 v,V1,1000,50,0.5,30,", /* a value too many */
        "3000 v,,1000,50,0.5,30",    /* no id */
        "3000 v,V1\\",               /* an escape at the end */
        "3000 m,M1,1000,0.5,230;",   /* an empty row */
        "3000 v,V1,soon,50,0.5,30",  /* not a time */
        "3000v,V1,1000,50,0.5,30",   /* no space */
        "3000 ab",                   /* an unknown row */
        "3000 a;",                   /* an empty row after the assignments' */
    };
    for (size_t i = 0; i < sizeof strangers / sizeof strangers[0]; i++) {
        hot_notice_round_reset(&r);
        hot_notice_take(&r, "2000 -", keep, &t);
        hot_notice_take(&r, strangers[i], keep, &t);
        assert_true(r.any);
        assert_int_equal(r.earliest_us, 2000);
        if (!r.by_stamp)
            fail_msg("no read by stamp after \"%s\"", strangers[i]);
    }
    /* Once the round reads by stamp, later notices' readings are left to it. */
    t.n = 0;
    hot_notice_take(&r, "4000 v,V9,1000,50,0.5,30", keep, &t);
    assert_int_equal(t.n, 0);
    free(t.rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readings_come_back_exact),
        cmocka_unit_test(test_many_notices_then_the_stamp),
        cmocka_unit_test(test_nothing_offered),
        cmocka_unit_test(test_stamps_and_strangers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
