/* What a Kafka client's error means for the program (lib/kafka.h): the
 * classification as plain code, and a real idempotent producer made with
 * kafka_producer_open (no broker: it never gets to connect) that librdkafka's
 * own rd_kafka_test_fatal_error puts in the state a real fatal error leaves:
 * the program must be asked to stop (SIGTERM to itself), the reason kept for
 * main() to report, and further records refused with that reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>

#include "kafka.h"

static volatile sig_atomic_t got_sigterm;

static void on_sigterm(int sig)
{
    (void)sig;
    got_sigterm = 1;
}

static void test_classify(void **state)
{
    assert_int_equal(kafka_error_classify(RD_KAFKA_RESP_ERR__FATAL), KAFKA_ERROR_FATAL);
    assert_int_equal(kafka_error_classify(RD_KAFKA_RESP_ERR__TRANSPORT), KAFKA_ERROR_TRANSIENT);
    assert_int_equal(kafka_error_classify(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN),
                     KAFKA_ERROR_TRANSIENT);
    assert_int_equal(kafka_error_classify(RD_KAFKA_RESP_ERR__RESOLVE), KAFKA_ERROR_TRANSIENT);
    assert_int_equal(kafka_error_classify(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART),
                     KAFKA_ERROR_TRANSIENT);
    assert_int_equal(kafka_error_classify(RD_KAFKA_RESP_ERR__AUTHENTICATION),
                     KAFKA_ERROR_PERSISTENT);
    assert_int_equal(kafka_error_classify(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
                     KAFKA_ERROR_PERSISTENT);
}

/* Runs first: nothing but a fatal error may ask the program to stop. */
static void test_others_do_not_stop(void **state)
{
    kafka_report_error(NULL, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down");
    kafka_report_error(NULL, RD_KAFKA_RESP_ERR__AUTHENTICATION, "SASL authentication failed");
    assert_false(kafka_fatal_stop(NULL, 0));
    assert_int_equal(got_sigterm, 0);
}

static void test_fatal_producer_stops_program(void **state)
{
    eie_err err;
    kafka_topics topics;
    kafka_producer p;
    assert_int_equal(kafka_topics_init(&topics, "test.", &err), 0);
    /* Nothing listens on port 1: the client only retries connecting. */
    assert_int_equal(kafka_producer_open(&p, "127.0.0.1:1", NULL, &topics, NULL, &err), 0);
    assert_int_equal(rd_kafka_test_fatal_error(
                         p.rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "sequence lost"),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    /* The error callback runs inside a poll, as in every program. */
    for (int i = 0; i < 200 && !got_sigterm; i++)
        rd_kafka_poll(p.rk, 50);
    assert_int_equal(got_sigterm, 1);

    char reason[512];
    assert_true(kafka_fatal_stop(reason, sizeof reason));
    assert_non_null(strstr(reason, "sequence lost"));
    assert_non_null(strstr(reason, "OUT_OF_ORDER_SEQUENCE_NUMBER"));

    reading r = {.kind = READING_METER};
    strcpy(r.u.meter.meter_id, "M1");
    r.u.meter.ts_ms = 1770642480000;
    assert_int_equal(kafka_producer_send(&p, &r, &err), -1);
    assert_non_null(strstr(err.msg, "sequence lost"));
    kafka_producer_close(&p);
}

int main(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_others_do_not_stop),
        cmocka_unit_test(test_fatal_producer_stops_program),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
