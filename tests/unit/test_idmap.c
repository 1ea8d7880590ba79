/* Unit tests of the API caches' id map: dense indexes that survive growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "idmap.h"

static void test_indexes_are_dense_and_stable(void **state)
{
    idmap m;
    idmap_init(&m, READING_VEHICLE);
    assert_int_equal(idmap_find(&m, "V1"), -1); /* empty: nothing allocated yet */
    char id[32];
    /* Far past the first table size, so that it grows several times. */
    for (long i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "V%ld", i);
        assert_int_equal(idmap_add(&m, id), i);
    }
    assert_int_equal(m.n, 5000);
    for (long i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "V%ld", i);
        assert_int_equal(idmap_find(&m, id), i);
        assert_int_equal(idmap_add(&m, id), i); /* adding again changes nothing */
        assert_string_equal(m.ids[i], id);
    }
    assert_int_equal(m.n, 5000);
    assert_int_equal(idmap_find(&m, "V5000"), -1);
    assert_int_equal(idmap_find(&m, ""), -1);
    idmap_free(&m);
    assert_int_equal(idmap_find(&m, "V1"), -1);
}

static void test_rejects_ids_too_long(void **state)
{
    idmap m;
    idmap_init(&m, READING_METER);
    char id[READING_ID_MAX + 2];
    memset(id, 'M', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    assert_int_equal(idmap_add(&m, id), -1);
    assert_int_equal(idmap_find(&m, id), -1);
    id[READING_ID_MAX] = '\0'; /* the longest allowed */
    assert_int_equal(idmap_add(&m, id), 0);
    assert_int_equal(idmap_find(&m, id), 0);
    idmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_indexes_are_dense_and_stable),
        cmocka_unit_test(test_rejects_ids_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
