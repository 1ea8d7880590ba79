/* Unit tests of the simulator's depot (producers/fleet.c): with a meter per
 * vehicle no two vehicles ever share one, however they are reassigned; with
 * banks, a meter's AC is the sum of its vehicles' DC over their efficiency. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "fleet.h"

/* How many vehicles each meter feeds. */
static long *occupancy(const fleet *f)
{
    long *count = calloc((size_t)f->meters, sizeof *count);
    assert_non_null(count);
    for (long i = 0; i < f->n; i++) {
        assert_in_range(f->vehicles[i].meter, 0, f->meters - 1);
        count[f->vehicles[i].meter]++;
    }
    return count;
}

/* Reassigns at a high rate for many intervals, checking after each that every
 * meter feeds as many vehicles as at the start; returns the moves made. */
static long churn(fleet *f, long intervals, const long *start)
{
    rng r;
    rng_seed(&r, 7);
    double *dc = calloc((size_t)f->n, sizeof *dc);
    assert_non_null(dc);
    long moves = 0;
    for (long t = 0; t < intervals; t++) {
        for (long i = 0; i < f->n; i++) {
            if (rng_uniform(&r, 0, 1) >= 0.2)
                continue;
            long before = f->vehicles[i].meter;
            long j = fleet_reassign(f, i, t, &r);
            if (j < 0)
                continue;
            moves++;
            assert_int_not_equal(f->vehicles[i].meter, before);
            assert_int_equal(f->vehicles[j].meter, before);
            /* Once an interval: a second move of either in t is refused. */
            assert_int_equal(fleet_reassign(f, i, t, &r), -1);
            assert_int_equal(fleet_reassign(f, j, t, &r), -1);
        }
        fleet_step(f, 1.0 / 60, dc);
        long *now = occupancy(f);
        for (long m = 0; m < f->meters; m++)
            assert_int_equal(now[m], start[m]);
        free(now);
    }
    free(dc);
    return moves;
}

static void test_a_meter_per_vehicle_is_never_shared(void **state)
{
    (void)state;
    fleet f;
    assert_int_equal(fleet_init(&f, 50, 1, 42), 0);
    assert_int_equal(f.meters, 50);
    long *start = occupancy(&f);
    for (long m = 0; m < f.meters; m++)
        assert_int_equal(start[m], 1);
    assert_true(churn(&f, 500, start) > 1000);
    free(start);
    fleet_free(&f);
}

static void test_banks_fill_in_order_and_keep_their_size(void **state)
{
    (void)state;
    fleet f;
    assert_int_equal(fleet_init(&f, 10, 4, 42), 0);
    assert_int_equal(f.meters, 3); /* 4 + 4 + 2 */
    for (long i = 0; i < f.n; i++)
        assert_int_equal(f.vehicles[i].meter, i / 4);
    long *start = occupancy(&f);
    assert_int_equal(start[2], 2);
    assert_true(churn(&f, 200, start) > 100);
    free(start);
    fleet_free(&f);
}

static void test_a_single_meter_has_nowhere_to_move(void **state)
{
    (void)state;
    fleet f;
    rng r;
    rng_seed(&r, 1);
    assert_int_equal(fleet_init(&f, 3, 3, 42), 0);
    assert_int_equal(f.meters, 1);
    assert_int_equal(fleet_reassign(&f, 0, 0, &r), -1);
    fleet_free(&f);
    assert_int_equal(fleet_init(&f, 1, 1, 42), 0);
    assert_int_equal(fleet_reassign(&f, 0, 0, &r), -1);
    fleet_free(&f);
}

static void test_a_bank_meter_draws_its_vehicles_dc_over_efficiency(void **state)
{
    (void)state;
    fleet f;
    assert_int_equal(fleet_init(&f, 40, 5, 9), 0);
    double *dc = calloc((size_t)f.n, sizeof *dc);
    double *expected = calloc((size_t)f.meters, sizeof *expected);
    assert_non_null(dc);
    assert_non_null(expected);
    rng r;
    rng_seed(&r, 3);
    long shared = 0; /* meter-intervals with two or more vehicles charging */
    for (long t = 0; t < 300; t++) {
        if (fleet_reassign(&f, t % f.n, t, &r) < 0)
            fail_msg("no reassignment in interval %ld", t);
        fleet_step(&f, 1.0 / 60, dc);
        long charging[8] = {0};
        for (long m = 0; m < f.meters; m++)
            expected[m] = 0;
        for (long i = 0; i < f.n; i++) {
            expected[f.vehicles[i].meter] += dc[i] / f.vehicles[i].efficiency;
            charging[f.vehicles[i].meter] += dc[i] > 0;
        }
        for (long m = 0; m < f.meters; m++) {
            assert_true(fabs(f.meter_ac[m] - expected[m]) <= 1e-9 * (1 + expected[m]));
            shared += charging[m] > 1;
        }
    }
    assert_true(shared > 100);
    free(dc);
    free(expected);
    fleet_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_meter_per_vehicle_is_never_shared),
        cmocka_unit_test(test_banks_fill_in_order_and_keep_their_size),
        cmocka_unit_test(test_a_single_meter_has_nowhere_to_move),
        cmocka_unit_test(test_a_bank_meter_draws_its_vehicles_dc_over_efficiency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
