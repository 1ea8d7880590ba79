/* Unit tests of the API's JSON writer: the same text jansson gave for the
 * same values, and valid JSON for any id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

/* What respond_json printed before: jansson with 15 significant digits. */
static char *jansson_real(double v)
{
    json_t *r = json_real(v);
    char *text = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY);
    json_decref(r);
    return text;
}

static void test_reals_print_as_jansson_did(void **state)
{
    const double fixed[] = {34.2,  0.1 + 0.2, 230,    1e20,      1e-5,  -2.5e-300, 1.0 / 3,
                            5e15,  1e16,      0,      -1.5,      226.8, 28.2492361111111,
                            1e100, 123456789012345678.0,  -0.0,  0.001, 999999999.999, -0.138,
                            1e9,   12880.041, 0.0005, 100000000.5};
    srand(7);
    for (int i = 0; i < 200000; i++) {
        /* Half of them readings-like (at most three decimals, the writer's
         * short path), half anything. */
        double v = i < (int)(sizeof fixed / sizeof fixed[0]) ? fixed[i]
                   : i % 2 ? (double)(rand() % 2000000000 - 1000000000) / pow(10, rand() % 4)
                           : (rand() / (double)RAND_MAX - 0.5) * pow(10, rand() % 40 - 20);
        char *want = jansson_real(v);
        jsonw w;
        jsonw_init(&w);
        jsonw_real(&w, NULL, v);
        assert_string_equal(w.out.data, want);
        free(want);
        jsonw_free(&w);
    }
}

static void test_documents_parse_back(void **state)
{
    jsonw w;
    jsonw_init(&w);
    jsonw_begin(&w, NULL);
    jsonw_string(&w, "id", "V\"1\\\n\x01é");
    jsonw_string(&w, "none", NULL);
    jsonw_real(&w, "nan", NAN);
    jsonw_int(&w, "n", -42);
    jsonw_bool(&w, "yes", true);
    jsonw_time(&w, "at", 1770642480123LL);
    jsonw_begin_array(&w, "items");
    jsonw_begin(&w, NULL);
    jsonw_end(&w);
    jsonw_begin(&w, NULL);
    jsonw_null(&w, "x");
    jsonw_end(&w);
    jsonw_end_array(&w);
    jsonw_begin_array(&w, "empty");
    jsonw_end_array(&w);
    jsonw_end(&w);
    json_error_t error;
    json_t *doc = json_loads(w.out.data, 0, &error);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "id")), "V\"1\\\n\x01é");
    assert_true(json_is_null(json_object_get(doc, "none")));
    assert_true(json_is_null(json_object_get(doc, "nan")));
    assert_int_equal(json_integer_value(json_object_get(doc, "n")), -42);
    assert_true(json_is_true(json_object_get(doc, "yes")));
    assert_string_equal(json_string_value(json_object_get(doc, "at")), "2026-02-09T13:08:00.123Z");
    assert_int_equal(json_array_size(json_object_get(doc, "items")), 2);
    assert_int_equal(json_array_size(json_object_get(doc, "empty")), 0);
    json_decref(doc);
    jsonw_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reals_print_as_jansson_did),
        cmocka_unit_test(test_documents_parse_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
