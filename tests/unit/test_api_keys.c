/* Unit tests of the API key file (lib/api_keys.c): its parsing, the errors
 * that name the line, lookup by hash, and a made key found by its hash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_keys.h"

#define HASH_A "blake2b256:" "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define HASH_B "blake2b256:" "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static void parse_ok(const char *text, api_key_list *keys)
{
    eie_err err = {{0}};
    int rc = api_keys_parse(text, strlen(text), keys, &err);
    if (rc != 0)
        fail_msg("parse failed: %s", err.msg);
}

/* The parse fails and its message holds want. */
static void parse_fails(const char *text, const char *want)
{
    api_key_list keys;
    eie_err err = {{0}};
    assert_int_equal(api_keys_parse(text, strlen(text), &keys, &err), -1);
    if (!strstr(err.msg, want))
        fail_msg("expected '%s' in '%s'", want, err.msg);
    assert_int_equal(keys.n, 0);
    assert_null(keys.items);
}

static void test_parses_entries_comments_and_options(void **state)
{
    api_key_list keys;
    parse_ok("# keys; a comment ends at its newline only\n\n  ingest-1 write " HASH_A " rate=2.5 burst=10\r\n"
             "\tdash.board\tread\t" HASH_B "\n", &keys);
    assert_int_equal(keys.n, 2);
    assert_string_equal(keys.items[0].name, "ingest-1");
    assert_int_equal(keys.items[0].role, API_ROLE_WRITE);
    assert_true(keys.items[0].rate == 2.5 && keys.items[0].burst == 10);
    assert_int_equal(keys.items[0].hash[0], 0x00);
    assert_int_equal(keys.items[0].hash[31], 0xff);
    assert_string_equal(keys.items[1].name, "dash.board");
    assert_int_equal(keys.items[1].role, API_ROLE_READ);
    assert_true(keys.items[1].rate < 0 && keys.items[1].burst < 0); /* the server's */
    api_keys_free(&keys);

    parse_ok("", &keys); /* no keys at all */
    assert_int_equal(keys.n, 0);
    /* ';' separates entries too: the whole file in one environment variable. */
    parse_ok("a admin " HASH_A ";b read " HASH_B ";", &keys);
    assert_int_equal(keys.n, 2);
    assert_int_equal(keys.items[0].role, API_ROLE_ADMIN);
    api_keys_free(&keys);
}

static void test_errors_name_the_line(void **state)
{
    parse_fails("ok read " HASH_A "\nbad\n", "line 2: expected NAME ROLE");
    parse_fails("a owner " HASH_A, "line 1: key 'a': bad role 'owner'");
    parse_fails("a read eie_SomeKeyItself", "the hash must be blake2b256:");
    parse_fails("a read blake2b256:0011", "the hash must be");
    parse_fails("a read blake2b256:" "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
                "the hash must be");
    parse_fails("a/b read " HASH_A, "bad name 'a/b'");
    parse_fails("a read " HASH_A " rate=-1", "bad option 'rate=-1'");
    parse_fails("a read " HASH_A " burst=0.5", "bad option 'burst=0.5'");
    parse_fails("a read " HASH_A " rate=fast", "bad option");
    parse_fails("a read " HASH_A " colour=red", "bad option 'colour=red'");
    parse_fails("a read " HASH_A "\n# x\nb write " HASH_B "\na write " HASH_B,
                "line 4: there is a key named 'a' already");
    parse_fails("a read " HASH_A "\nb write " HASH_A, "line 2: keys 'a' and 'b' have the same hash");
    char long_name[API_KEY_NAME_MAX + 2];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    char text[256];
    snprintf(text, sizeof text, "%s read %s", long_name, HASH_A);
    parse_fails(text, "bad name");
    api_key_list keys;
    eie_err err;
    assert_int_equal(api_keys_parse("a read \0x", 9, &keys, &err), -1); /* a NUL byte */
}

static void test_made_key_is_found_by_its_hash_only(void **state)
{
    char key[API_KEY_TEXT_SIZE], other[API_KEY_TEXT_SIZE];
    api_key_entry a = {.name = "a", .role = API_ROLE_WRITE, .rate = -1, .burst = -1};
    api_key_entry b = {.name = "b", .role = API_ROLE_READ, .rate = -1, .burst = -1};
    assert_int_equal(api_key_generate(key, a.hash), 0);
    assert_int_equal(api_key_generate(other, b.hash), 0);
    assert_int_equal(strlen(key), API_KEY_TEXT_SIZE - 1);
    assert_memory_equal(key, API_KEY_PREFIX, strlen(API_KEY_PREFIX));
    assert_string_not_equal(key, other);

    api_key_list keys = {0};
    eie_err err;
    assert_int_equal(api_keys_add(&keys, &a, &err), 0);
    assert_int_equal(api_keys_add(&keys, &b, &err), 0);
    assert_int_equal(api_keys_add(&keys, &a, &err), -1); /* its name again */

    unsigned char hash[API_KEY_HASH_BYTES];
    api_key_hash(key, strlen(key), hash);
    assert_ptr_equal(api_keys_find(&keys, hash), &keys.items[0]);
    api_key_hash(other, strlen(other), hash);
    assert_ptr_equal(api_keys_find(&keys, hash), &keys.items[1]);
    key[10] ^= 1; /* one bit off */
    api_key_hash(key, strlen(key), hash);
    assert_null(api_keys_find(&keys, hash));
    api_key_hash(key, strlen(key) - 1, hash); /* a prefix */
    assert_null(api_keys_find(&keys, hash));

    assert_int_equal(api_keys_remove(&keys, "a"), 0);
    assert_int_equal(api_keys_remove(&keys, "a"), -1);
    assert_int_equal(keys.n, 1);
    assert_string_equal(keys.items[0].name, "b");
    api_keys_free(&keys);
}

static void test_file_round_trip(void **state)
{
    char path[] = "/tmp/eie-test-keys.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    api_key_list keys, again;
    parse_ok("w write " HASH_A " rate=0.5 burst=3\nr read " HASH_B "\n", &keys);
    eie_err err;
    assert_int_equal(api_keys_save_file(path, &keys, &err), 0);
    if (api_keys_load_file(path, &again, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(again.n, 2);
    assert_memory_equal(again.items, keys.items, 2 * sizeof *keys.items);
    api_keys_free(&again);
    api_keys_free(&keys);
    unlink(path);
    assert_int_equal(api_keys_load_file(path, &keys, &err), -1);
    assert_non_null(strstr(err.msg, "No such file"));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_entries_comments_and_options),
        cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_made_key_is_found_by_its_hash_only),
        cmocka_unit_test(test_file_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
