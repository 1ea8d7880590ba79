/* Unit tests of the write routes' token bucket (api/token_bucket.c): a full
 * bucket's burst, the steady rate after it, Retry-After's wait, no limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "token_bucket.h"

static void test_burst_then_rate(void **state)
{
    token_bucket b;
    int64_t retry = 0;
    token_bucket_init(&b, 2, 3, 1000); /* 2 a second, bursts of 3 */
    for (int i = 0; i < 3; i++)
        assert_true(token_bucket_take(&b, 1000, &retry));
    assert_false(token_bucket_take(&b, 1000, &retry));
    assert_int_equal(retry, 500); /* one token comes every 500 ms */
    assert_false(token_bucket_take(&b, 1499, &retry));
    assert_int_equal(retry, 1);
    assert_true(token_bucket_take(&b, 1500, &retry));
    assert_false(token_bucket_take(&b, 1500, &retry));
    /* A long pause refills up to the burst, not beyond. */
    for (int i = 0; i < 3; i++)
        assert_true(token_bucket_take(&b, 60000, &retry));
    assert_false(token_bucket_take(&b, 60000, &retry));
}

static void test_slow_rate_and_clock_going_back(void **state)
{
    token_bucket b;
    int64_t retry = 0;
    token_bucket_init(&b, 0.1, 1, 0); /* one every 10 s */
    assert_true(token_bucket_take(&b, 0, &retry));
    assert_false(token_bucket_take(&b, 2500, &retry));
    assert_int_equal(retry, 7500);
    assert_false(token_bucket_take(&b, 100, &retry)); /* earlier: nothing refilled */
    assert_int_equal(retry, 7500);
    assert_true(token_bucket_take(&b, 10000, &retry));
}

static void test_no_limit(void **state)
{
    token_bucket b;
    int64_t retry = 0;
    token_bucket_init(&b, 0, 1, 0);
    for (int i = 0; i < 10000; i++)
        assert_true(token_bucket_take(&b, 0, &retry));
    token_bucket_init(&b, 5, 0.2, 0); /* a burst below 1 still lets one through */
    assert_true(token_bucket_take(&b, 0, &retry));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_slow_rate_and_clock_going_back),
        cmocka_unit_test(test_no_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
