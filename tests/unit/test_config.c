/* Unit tests of flag and environment parsing: precedence, bad values (exit 2
 * with a message naming the setting) and -X passthrough. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Runs config_parse with stderr sent to a temporary file; returns what was written. */
static char stderr_text[4096];
static config_result run_captured(int argc, char **argv, config_props *props, int *first)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    assert_true(saved >= 0 && dup2(fileno(tmp), STDERR_FILENO) >= 0);
    config_result cr = run(argc, argv, props, first);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(stderr_text, 1, sizeof stderr_text - 1, tmp);
    stderr_text[n] = '\0';
    fclose(tmp);
    return cr;
}

/* Bad usage is CONFIG_BAD_USAGE (every main turns it into exit status 2) with
 * one message naming the setting and the value. */
static void expect_bad_usage(int argc, char **argv, config_props *props, const char *message)
{
    int first;
    assert_int_equal(run_captured(argc, argv, props, &first), CONFIG_BAD_USAGE);
    if (!strstr(stderr_text, message))
        fail_msg("expected '%s' in the message, got '%s'", message, stderr_text);
}

static void test_bad_values(void **state)
{
    config_props props = {0};
    int first;
    char *a1[] = {"test", "--count", "11", NULL};
    expect_bad_usage(3, a1, &props, "test: invalid --count '11': expected an integer from 1 to 10");
    char *a2[] = {"test", "--count", "3x", NULL};
    expect_bad_usage(3, a2, &props, "invalid --count '3x'");
    char *a2s[] = {"test", "-c", "0", NULL};
    expect_bad_usage(3, a2s, &props, "invalid --count '0'");
    char *a3[] = {"test", "--nope", NULL};
    expect_bad_usage(2, a3, &props, "test: unknown option or missing value: --nope");
    char *a3m[] = {"test", "--count", NULL};
    expect_bad_usage(2, a3m, &props, "unknown option or missing value: --count");
    char *a4[] = {"test", "-X", "novalue", NULL};
    expect_bad_usage(3, a4, &props, "test: -X: expected key=value, got 'novalue'");
    setenv("TEST_COUNT", "zero", 1);
    char *a5[] = {"test", NULL};
    expect_bad_usage(1, a5, &props, "test: invalid TEST_COUNT 'zero'");
    unsetenv("TEST_COUNT");
    setenv("TEST_VERBOSE", "maybe", 1);
    expect_bad_usage(1, a5, &props, "invalid TEST_VERBOSE 'maybe': expected true or false");
    unsetenv("TEST_VERBOSE");
    setenv("EIE_KAFKA_PROPERTIES", "a=1,broken", 1);
    expect_bad_usage(1, a5, &props, "EIE_KAFKA_PROPERTIES: expected key=value, got 'broken'");
    unsetenv("EIE_KAFKA_PROPERTIES");
    char *a6[] = {"test", "--help", NULL};
    assert_int_equal(run(2, a6, &props, &first), CONFIG_HELP_SHOWN);
    /* A program that takes no operands refuses one. */
    char *a7[] = {"test", "-c", "3", "stray", NULL};
    spec.takes_operands = false;
    expect_bad_usage(4, a7, &props, "test: unexpected argument 'stray'");
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
