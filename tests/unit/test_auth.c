/* Unit tests of the API's key check (api/auth.c) without a server: which
 * routes need a key under each --read-access, 401 without a key or with an
 * unknown one, 403 for a role too low, 429 with Retry-After once a key's
 * bucket is empty, the key's name (never the key) in the metrics, and a
 * reload that adds and revokes keys and keeps the old ones on a bad file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"

static char write_key[API_KEY_TEXT_SIZE], read_key[API_KEY_TEXT_SIZE], admin_key[API_KEY_TEXT_SIZE];

/* A key file line for a new key of that name and role (the key in key). */
static void make_line(char *line, size_t size, const char *name, const char *role, const char *options,
                      char key[API_KEY_TEXT_SIZE])
{
    unsigned char hash[API_KEY_HASH_BYTES];
    assert_int_equal(api_key_generate(key, hash), 0);
    char hex[2 * API_KEY_HASH_BYTES + 1];
    for (int i = 0; i < API_KEY_HASH_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    snprintf(line, size, "%s %s %s%s %s\n", name, role, API_KEY_HASH_TAG, hex, options);
}

/* auth_check of a request with these headers (name, value, ...; NULL ends). */
static int check(auth *a, api_access access, struct _u_response *resp, char *key_name, ...)
{
    struct _u_request req;
    assert_int_equal(ulfius_init_request(&req), U_OK);
    ulfius_clean_response(resp);
    assert_int_equal(ulfius_init_response(resp), U_OK);
    va_list ap;
    va_start(ap, key_name);
    for (const char *h; (h = va_arg(ap, const char *));)
        u_map_put(req.map_header, h, va_arg(ap, const char *));
    va_end(ap);
    int rc = auth_check(a, access, &req, resp, key_name);
    ulfius_clean_request(&req);
    return rc;
}

static void test_read_access_modes(void **state)
{
    struct in_addr lo, lo2, any, lan;
    inet_pton(AF_INET, "127.0.0.1", &lo);
    inet_pton(AF_INET, "127.0.0.2", &lo2);
    inet_pton(AF_INET, "0.0.0.0", &any);
    inet_pton(AF_INET, "192.168.1.5", &lan);
    assert_int_equal(auth_reads_need_key("auto", &lo), 0);
    assert_int_equal(auth_reads_need_key("auto", &lo2), 0);
    assert_int_equal(auth_reads_need_key("auto", &any), 1);
    assert_int_equal(auth_reads_need_key("auto", &lan), 1);
    assert_int_equal(auth_reads_need_key("open", &any), 0);
    assert_int_equal(auth_reads_need_key("key", &lo), 1);
    assert_int_equal(auth_reads_need_key("closed", &lo), -1);
}

static void test_roles_and_limits(void **state)
{
    char text[1024], line[256];
    text[0] = '\0';
    make_line(line, sizeof line, "writer", "write", "rate=1 burst=2", write_key);
    strcat(text, line);
    make_line(line, sizeof line, "reader", "read", "", read_key);
    strcat(text, line);
    make_line(line, sizeof line, "boss", "admin", "", admin_key);
    strcat(text, line);
    metrics *m = metrics_new();
    eie_err err;
    auth_settings settings = {.keys_text = text, .reads_need_key = true, .write_rate = 0, .write_burst = 1};
    auth *a = auth_open(&settings, m, &err);
    assert_non_null(a);
    assert_int_equal(auth_key_count(a), 3);

    struct _u_response resp;
    ulfius_init_response(&resp);
    char name[API_KEY_NAME_MAX + 1], bearer[128];
    assert_int_equal(check(a, API_ACCESS_PUBLIC, &resp, name, NULL), 0);
    assert_string_equal(name, "");
    assert_int_equal(check(a, API_ACCESS_READ, &resp, name, NULL), -1);
    assert_int_equal(resp.status, 401);
    assert_non_null(u_map_get(resp.map_header, "WWW-Authenticate"));
    assert_int_equal(check(a, API_ACCESS_READ, &resp, name, "X-API-Key", "eie_nope", NULL), -1);
    assert_int_equal(resp.status, 401);
    snprintf(bearer, sizeof bearer, "Basic %s", read_key); /* not a scheme we take */
    assert_int_equal(check(a, API_ACCESS_READ, &resp, name, "Authorization", bearer, NULL), -1);
    assert_int_equal(resp.status, 401);

    snprintf(bearer, sizeof bearer, "Bearer %s", read_key);
    assert_int_equal(check(a, API_ACCESS_READ, &resp, name, "authorization", bearer, NULL), 0);
    assert_string_equal(name, "reader");
    assert_int_equal(check(a, API_ACCESS_WRITE, &resp, name, "Authorization", bearer, NULL), -1);
    assert_int_equal(resp.status, 403);
    assert_int_equal(check(a, API_ACCESS_READ, &resp, name, "X-API-Key", write_key, NULL), 0);
    assert_int_equal(check(a, API_ACCESS_ADMIN, &resp, name, "X-API-Key", write_key, NULL), -1);
    assert_int_equal(resp.status, 403);
    assert_int_equal(check(a, API_ACCESS_ADMIN, &resp, name, "X-API-Key", admin_key, NULL), 0);

    /* writer: bursts of 2 at one a second; reads take no token. */
    assert_int_equal(check(a, API_ACCESS_WRITE, &resp, name, "X-API-Key", write_key, NULL), 0);
    assert_int_equal(check(a, API_ACCESS_WRITE, &resp, name, "X-API-Key", write_key, NULL), 0);
    assert_int_equal(check(a, API_ACCESS_WRITE, &resp, name, "X-API-Key", write_key, NULL), -1);
    assert_int_equal(resp.status, 429);
    assert_string_equal(u_map_get(resp.map_header, "Retry-After"), "1");
    assert_string_equal(name, "writer");
    assert_int_equal(check(a, API_ACCESS_READ, &resp, name, "X-API-Key", write_key, NULL), 0);
    /* admin: the server's rate, 0 here: no limit. */
    for (int i = 0; i < 50; i++)
        assert_int_equal(check(a, API_ACCESS_WRITE, &resp, name, "X-API-Key", admin_key, NULL), 0);

    strbuf out = STRBUF_INIT;
    metrics_write(m, &out);
    assert_non_null(strstr(out.data, "eie_api_key_requests_total{key=\"writer\",outcome=\"rate_limited\"} 1"));
    assert_non_null(strstr(out.data, "eie_api_key_requests_total{key=\"reader\",outcome=\"forbidden\"} 1"));
    assert_non_null(strstr(out.data, "eie_api_auth_failures_total{reason=\"missing\"} 2"));
    assert_null(strstr(out.data, write_key + strlen(API_KEY_PREFIX)));
    assert_null(strstr(out.data, read_key + strlen(API_KEY_PREFIX)));
    strbuf_free(&out);

    ulfius_clean_response(&resp);
    auth_free(a);
    metrics_free(m);
}

static void test_reload(void **state)
{
    char path[] = "/tmp/eie-test-auth.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char line[256], first[API_KEY_TEXT_SIZE], second[API_KEY_TEXT_SIZE];
    make_line(line, sizeof line, "first", "write", "rate=1 burst=1", first);
    assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    metrics *m = metrics_new();
    eie_err err;
    auth_settings settings = {.keys_file = path, .reads_need_key = true, .write_rate = 5, .write_burst = 5};
    auth *a = auth_open(&settings, m, &err);
    assert_non_null(a);
    struct _u_response resp;
    ulfius_init_response(&resp);
    char name[API_KEY_NAME_MAX + 1];
    assert_int_equal(check(a, API_ACCESS_WRITE, &resp, name, "X-API-Key", first, NULL), 0);

    /* Added: the new key works; the old one keeps its empty bucket. */
    make_line(line, sizeof line, "second", "read", "", second);
    assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    assert_int_equal(check(a, API_ACCESS_READ, &resp, name, "X-API-Key", second, NULL), -1);
    assert_int_equal(auth_reload(a, &err), 0);
    assert_int_equal(auth_key_count(a), 2);
    assert_int_equal(check(a, API_ACCESS_READ, &resp, name, "X-API-Key", second, NULL), 0);
    assert_int_equal(check(a, API_ACCESS_WRITE, &resp, name, "X-API-Key", first, NULL), -1);
    assert_int_equal(resp.status, 429);

    /* A bad file: the keys in use stay. */
    assert_int_equal(write(fd, "garbage\n", 8), 8);
    assert_int_equal(auth_reload(a, &err), -1);
    assert_non_null(strstr(err.msg, "line 3"));
    assert_int_equal(check(a, API_ACCESS_READ, &resp, name, "X-API-Key", second, NULL), 0);

    /* Revoked: only the first key left. */
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    make_line(line, sizeof line, "third", "read", "", second);
    assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    assert_int_equal(auth_reload(a, &err), 0);
    assert_int_equal(auth_key_count(a), 1);
    assert_int_equal(check(a, API_ACCESS_READ, &resp, name, "X-API-Key", first, NULL), -1);
    assert_int_equal(resp.status, 401);
    close(fd);
    unlink(path);
    ulfius_clean_response(&resp);
    auth_free(a);
    metrics_free(m);
}

static void test_no_keys_refuses_writes(void **state)
{
    struct _u_response resp;
    ulfius_init_response(&resp);
    char name[API_KEY_NAME_MAX + 1];
    /* No auth at all (the router's tests): reads open, writes 401. */
    assert_int_equal(check(NULL, API_ACCESS_READ, &resp, name, NULL), 0);
    assert_int_equal(check(NULL, API_ACCESS_WRITE, &resp, name, "X-API-Key", "eie_x", NULL), -1);
    assert_int_equal(resp.status, 401);
    ulfius_clean_response(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_access_modes),
        cmocka_unit_test(test_roles_and_limits),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_no_keys_refuses_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
