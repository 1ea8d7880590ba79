/* Unit tests of the hot store's commit notices (lib/hot_notice.h): what the
 * sink names comes out of the cache's round as the same ids, in payloads
 * PostgreSQL accepts; whatever the cache cannot read by key sends it to the
 * stamp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hot_notice.h"

#define STAMP "1764583200123456"

/* The round after taking every payload of w, each after STAMP. */
static void take_all(hot_notice_writer *w, hot_notice_round *r)
{
    const char *lists[HOT_NOTICE_MAX_LISTS];
    int n = hot_notice_payloads(w, lists);
    assert_true(n >= 1 && n <= HOT_NOTICE_MAX_LISTS);
    for (int i = 0; i < n; i++) {
        char payload[8192];
        int len = snprintf(payload, sizeof payload, STAMP "%s", lists[i]);
        assert_true(len < 8000); /* PostgreSQL's limit */
        hot_notice_take(r, payload);
    }
}

/* The elements of an array literal of quoted strings, as PostgreSQL reads
 * them (a backslash takes the next character as it is). */
static size_t parse_literal(const char *s, char out[][READING_ID_MAX + 1], size_t max)
{
    size_t n = 0;
    assert_int_equal(*s++, '{');
    while (*s != '}') {
        assert_true(n < max);
        assert_int_equal(*s++, '"');
        size_t len = 0;
        while (*s != '"') {
            if (*s == '\\')
                s++;
            assert_true(*s != '\0' && len < READING_ID_MAX);
            out[n][len++] = *s++;
        }
        out[n++][len] = '\0';
        s++;
        if (*s == ',')
            s++;
    }
    assert_int_equal(s[1], '\0');
    return n;
}

static void test_awkward_ids_come_back_whole(void **state)
{
    (void)state;
    static const char *const ids[] = {"V1", "a,b", "{x}", "q\"uote", "back\\slash", "two words",
                                      "Zürich-7", "} 3"};
    size_t n_ids = sizeof ids / sizeof ids[0];
    hot_notice_writer w = {0};
    hot_notice_round r = {0};
    hot_notice_writer_reset(&w);
    hot_notice_round_reset(&r);
    for (size_t i = 0; i < n_ids; i++)
        hot_notice_name(&w, READING_VEHICLE, ids[i]);
    hot_notice_name(&w, READING_METER, "M\"1");
    take_all(&w, &r);
    assert_true(r.any);
    assert_false(r.by_stamp);
    assert_int_equal(r.earliest_us, strtoll(STAMP, NULL, 10));
    assert_int_equal(r.n_ids[READING_VEHICLE], n_ids);
    assert_int_equal(r.n_ids[READING_METER], 1);
    strbuf lit = STRBUF_INIT;
    char got[16][READING_ID_MAX + 1];
    hot_notice_ids(&r, READING_VEHICLE, &lit);
    assert_int_equal(parse_literal(lit.data, got, 16), n_ids);
    for (size_t i = 0; i < n_ids; i++)
        assert_string_equal(got[i], ids[i]);
    hot_notice_ids(&r, READING_METER, &lit);
    assert_int_equal(parse_literal(lit.data, got, 16), 1);
    assert_string_equal(got[0], "M\"1");
    strbuf_free(&lit);
    hot_notice_writer_free(&w);
    hot_notice_round_free(&r);
}

/* A few thousand ids go in several notices, each under PostgreSQL's limit,
 * and come back as one list; more than the notices hold give the stamp only. */
static void test_lists_split_and_overflow(void **state)
{
    (void)state;
    hot_notice_writer w = {0};
    hot_notice_round r = {0};
    char id[READING_ID_MAX + 1];
    hot_notice_writer_reset(&w);
    hot_notice_round_reset(&r);
    for (int i = 0; i < 2000; i++) {
        snprintf(id, sizeof id, "V%05d", i);
        hot_notice_name(&w, READING_VEHICLE, id);
    }
    const char *lists[HOT_NOTICE_MAX_LISTS];
    assert_true(hot_notice_payloads(&w, lists) > 1);
    take_all(&w, &r);
    assert_false(r.by_stamp);
    assert_int_equal(r.n_ids[READING_VEHICLE], 2000);
    strbuf lit = STRBUF_INIT;
    static char got[2000][READING_ID_MAX + 1];
    hot_notice_ids(&r, READING_VEHICLE, &lit);
    assert_int_equal(parse_literal(lit.data, got, 2000), 2000);
    assert_string_equal(got[0], "V00000");
    assert_string_equal(got[1999], "V01999");
    strbuf_free(&lit);

    /* Ids of 64 characters, all quotes: the longest a notice can hold. */
    hot_notice_writer_reset(&w);
    hot_notice_round_reset(&r);
    memset(id, '"', READING_ID_MAX);
    id[READING_ID_MAX] = '\0';
    for (int i = 0; i < 1000; i++)
        hot_notice_name(&w, READING_METER, id);
    assert_true(w.too_many);
    take_all(&w, &r);
    assert_true(r.by_stamp);
    hot_notice_writer_free(&w);
    hot_notice_round_free(&r);
}

/* A commit that wrote no state row (assignments only) names none, and asks
 * for no scan. */
static void test_nothing_named(void **state)
{
    (void)state;
    hot_notice_writer w = {0};
    hot_notice_round r = {0};
    hot_notice_writer_reset(&w);
    hot_notice_round_reset(&r);
    take_all(&w, &r);
    assert_true(r.any);
    assert_false(r.by_stamp);
    assert_int_equal(r.n_ids[READING_VEHICLE], 0);
    assert_int_equal(r.n_ids[READING_METER], 0);
    hot_notice_writer_free(&w);
    hot_notice_round_free(&r);
}

/* The stamp alone, or anything this code does not know, reads by stamp from
 * the earliest commit; a payload without a stamp is no commit's. */
static void test_stamps_and_strangers(void **state)
{
    (void)state;
    hot_notice_round r = {0};
    hot_notice_round_reset(&r);
    hot_notice_take(&r, "not a commit");
    hot_notice_take(&r, "-5");
    assert_false(r.any);
    hot_notice_take(&r, "2000 v {\"V1\"} 1");
    hot_notice_take(&r, "1000 m {\"M1\"} 1");
    assert_false(r.by_stamp);
    assert_int_equal(r.earliest_us, 1000);
    static const char *const strangers[] = {"3000", "3000 x {\"V1\"} 1", "3000 v \"V1\" 1",
                                            "3000 v {\"V1\"}", "3000 v {\"V1\"} 1x"};
    for (size_t i = 0; i < sizeof strangers / sizeof strangers[0]; i++) {
        hot_notice_round_reset(&r);
        hot_notice_take(&r, "2000 v {\"V1\"} 1");
        hot_notice_take(&r, strangers[i]);
        assert_true(r.any);
        assert_int_equal(r.earliest_us, 2000);
        if (!r.by_stamp)
            fail_msg("read by key after \"%s\"", strangers[i]);
    }
    /* More ids in a round than are worth reading by key. */
    hot_notice_round_reset(&r);
    char big[64];
    snprintf(big, sizeof big, "2000 v {\"V1\"} %d", HOT_NOTICE_ROUND_MAX_IDS);
    hot_notice_take(&r, big);
    assert_false(r.by_stamp);
    hot_notice_take(&r, "2001 v {\"V2\"} 1");
    assert_true(r.by_stamp);
    hot_notice_round_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_awkward_ids_come_back_whole),
        cmocka_unit_test(test_lists_split_and_overflow),
        cmocka_unit_test(test_nothing_named),
        cmocka_unit_test(test_stamps_and_strangers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
