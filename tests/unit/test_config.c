/* Unit tests of flag and environment parsing: precedence, bad values (exit 2
 * with a message naming the setting) and -X passthrough. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config.h"

static const char *name;
static long count;
static bool verbose;
static config_option options[] = {
    {"name", 'n', "TEST_NAME", CONFIG_STRING, &name, "default-name", 0, 0, "a name"},
    {"count", 'c', "TEST_COUNT", CONFIG_INT, &count, "5", 1, 10, "a count"},
    {"verbose", 'v', "TEST_VERBOSE", CONFIG_FLAG, &verbose, NULL, 0, 0, "talk more"},
};
static config_spec spec = {"test", "[options] [FILE...]", "A test.", options, 3, true, true};

static config_result run(int argc, char **argv, config_props *props, int *first)
{
    return config_parse(&spec, argc, argv, props, first);
}

static void test_defaults_env_flags(void **state)
{
    config_props props = {0};
    int first;
    unsetenv("TEST_NAME");
    unsetenv("TEST_COUNT");
    char *a0[] = {"test", NULL};
    assert_int_equal(run(1, a0, &props, &first), CONFIG_OK);
    assert_string_equal(name, "default-name");
    assert_int_equal(count, 5);
    assert_false(verbose);

    setenv("TEST_NAME", "from-env", 1);
    setenv("TEST_COUNT", "7", 1);
    assert_int_equal(run(1, a0, &props, &first), CONFIG_OK);
    assert_string_equal(name, "from-env");
    assert_int_equal(count, 7);

    char *a1[] = {"test", "--name", "from-flag", "-c", "9", "-v", "file1", NULL};
    assert_int_equal(run(7, a1, &props, &first), CONFIG_OK);
    assert_string_equal(name, "from-flag");
    assert_int_equal(count, 9);
    assert_true(verbose);
    assert_int_equal(first, 6);
    unsetenv("TEST_NAME");
    unsetenv("TEST_COUNT");
    config_props_free(&props);
}

static void test_bad_values(void **state)
{
    config_props props = {0};
    int first;
    char *a1[] = {"test", "--count", "11", NULL};
    assert_int_equal(run(3, a1, &props, &first), CONFIG_BAD_USAGE);
    char *a2[] = {"test", "--count", "3x", NULL};
    assert_int_equal(run(3, a2, &props, &first), CONFIG_BAD_USAGE);
    char *a3[] = {"test", "--nope", NULL};
    assert_int_equal(run(2, a3, &props, &first), CONFIG_BAD_USAGE);
    char *a4[] = {"test", "-X", "novalue", NULL};
    assert_int_equal(run(3, a4, &props, &first), CONFIG_BAD_USAGE);
    setenv("TEST_COUNT", "zero", 1);
    char *a5[] = {"test", NULL};
    assert_int_equal(run(1, a5, &props, &first), CONFIG_BAD_USAGE);
    unsetenv("TEST_COUNT");
    char *a6[] = {"test", "--help", NULL};
    assert_int_equal(run(2, a6, &props, &first), CONFIG_HELP_SHOWN);
    /* A program that takes no operands refuses one. */
    char *a7[] = {"test", "-c", "3", "stray", NULL};
    spec.takes_operands = false;
    assert_int_equal(run(4, a7, &props, &first), CONFIG_BAD_USAGE);
    spec.takes_operands = true;
    assert_int_equal(run(4, a7, &props, &first), CONFIG_OK);
    assert_int_equal(first, 3);
    config_props_free(&props);
}

static void test_kafka_properties(void **state)
{
    config_props props = {0};
    int first;
    setenv("EIE_KAFKA_PROPERTIES", "a=1,b=x=y", 1);
    char *a1[] = {"test", "-X", "fetch.max.bytes=100", "--property", "c=", NULL};
    assert_int_equal(run(5, a1, &props, &first), CONFIG_OK);
    assert_int_equal(props.n, 4);
    assert_string_equal(props.keys[0], "a");
    assert_string_equal(props.values[1], "x=y");
    assert_string_equal(props.keys[2], "fetch.max.bytes");
    assert_string_equal(props.values[2], "100");
    assert_string_equal(props.values[3], "");
    unsetenv("EIE_KAFKA_PROPERTIES");
    config_props_free(&props);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_env_flags),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_kafka_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
