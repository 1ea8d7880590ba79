/* eie-produce: reads readings as JSON Lines (one object per line, the field
 * names clients use) from files or stdin and produces them to our topics. A
 * record counts as sent only when Kafka acknowledged it; the exit status is
 * non-zero if any line was rejected or any record was not acknowledged. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "kafka.h"
#include "log.h"
#include "progress.h"
#include "timefmt.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct produce_run {
    kafka_producer producer;
    int kind; /* -1: tell each line's kind from its fields */
    bool strict;
    uint64_t lines_read, rejected;
    progress progress;
} produce_run;

/* Returns -1 only when the run must stop (--strict, or the producer failed). */
static int produce_line(produce_run *run, const char *file, uint64_t line_no, const char *line,
                        size_t len)
{
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    size_t start = strspn(line, " \t");
    if (start >= len)
        return 0; /* blank lines are not readings */
    run->lines_read++;
    json_error_t jerr;
    eie_err err;
    reading r;
    json_t *obj = json_loadb(line, len, 0, &jerr);
    if (!obj) {
        eie_err_set(&err, "not JSON: %s (column %d)", jerr.text, jerr.column);
    } else if (reading_from_json(obj, run->kind, &r, &err) == 0 &&
               reading_validate(&r, timefmt_now_ms(), &err) == 0) {
        json_decref(obj);
        if (kafka_producer_send(&run->producer, &r, &err) < 0) {
            log_error("%s:%llu: %s", file, (unsigned long long)line_no, err.msg);
            return -1;
        }
        return 0;
    }
    json_decref(obj);
    run->rejected++;
    log_error("%s:%llu: rejected: %s", file, (unsigned long long)line_no, err.msg);
    return run->strict ? -1 : 0;
}

static int produce_file(produce_run *run, const char *path)
{
    int is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    FILE *in = is_stdin ? stdin : fopen(path, "r");
    if (!in) {
        log_error("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t line_no = 0;
    int rc = 0;
    while (!stop_requested && (len = getline(&line, &cap, in)) >= 0) {
        if ((rc = produce_line(run, name, ++line_no, line, (size_t)len)) < 0)
            break;
        progress_update(&run->progress, run->producer.acked);
    }
    if (rc == 0 && ferror(in)) {
        log_error("reading %s: %s", name, strerror(errno));
        rc = -1;
    }
    free(line);
    if (!is_stdin)
        fclose(in);
    return rc;
}

int main(int argc, char **argv)
{
    log_init("eie-produce");
    const char *bootstrap, *prefix, *type;
    long flush_timeout_ms;
    produce_run run = {.kind = -1};
    config_option options[] = {
        {"bootstrap-servers", 'b', "KAFKA_BOOTSTRAP_SERVERS", CONFIG_STRING, &bootstrap,
         KAFKA_DEFAULT_BOOTSTRAP, 0, 0, "Kafka brokers"},
        {"topic-prefix", 0, "EIE_TOPIC_PREFIX", CONFIG_STRING, &prefix, KAFKA_DEFAULT_TOPIC_PREFIX,
         0, 0, "prefix of the topic names"},
        {"type", 't', "EIE_PRODUCE_TYPE", CONFIG_STRING, &type, "auto", 0, 0,
         "meter, vehicle, assignment, or auto (told from each line's fields)"},
        {"strict", 0, "EIE_PRODUCE_STRICT", CONFIG_FLAG, &run.strict, NULL, 0, 0,
         "stop at the first bad line instead of skipping it"},
        {"flush-timeout-ms", 0, "EIE_FLUSH_TIMEOUT_MS", CONFIG_INT, &flush_timeout_ms, "60000", 0,
         3600000, "how long to wait for the last acknowledgements"},
    };
    config_spec spec = {
        "eie-produce", "[options] [FILE...]",
        "Produces meter readings, vehicle readings and assignments, one JSON object per line,\n"
        "from the FILEs (or standard input, also as '-') to Kafka in Avro single-object\n"
        "encoding. Idempotent producer, acks=all. Exits 0 only when every line was valid\n"
        "and every record was acknowledged. Example line:\n"
        "  {\"vehicleId\":\"V1\",\"soc\":80.5,\"kwhDeliveredDc\":0.12,\"batteryTemp\":34.2,"
        "\"timestamp\":\"2026-02-09T13:08:00Z\"}",
        options, sizeof options / sizeof options[0], true};
    config_props props = {0};
    int first;
    config_result cr = kafka_config_parse(&spec, argc, argv, &props, &first);
    if (cr != CONFIG_OK) {
        config_props_free(&props);
        return cr == CONFIG_HELP_SHOWN ? 0 : 2;
    }
    if (strcmp(type, "auto") != 0) {
        reading_kind kind;
        if (reading_kind_parse(type, &kind) < 0) {
            fprintf(stderr, "eie-produce: invalid --type (EIE_PRODUCE_TYPE) '%s': expected meter, "
                            "vehicle, assignment or auto\n", type);
            config_props_free(&props);
            return 2;
        }
        run.kind = (int)kind;
    }
    eie_err err;
    kafka_topics topics;
    if (kafka_topics_init(&topics, prefix, &err) < 0) {
        fprintf(stderr, "eie-produce: --topic-prefix: %s\n", err.msg);
        config_props_free(&props);
        return 2;
    }
    if (kafka_producer_open(&run.producer, bootstrap, &props, &topics, &err) < 0) {
        log_error("%s", err.msg);
        config_props_free(&props);
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    progress_start(&run.progress, "acknowledged", 0);
    int rc = 0;
    if (first == argc)
        rc = produce_file(&run, "-");
    for (int i = first; i < argc && rc == 0 && !stop_requested; i++)
        rc = produce_file(&run, argv[i]);

    int outstanding = kafka_producer_flush(&run.producer, (int)flush_timeout_ms);
    kafka_producer *p = &run.producer;
    if (run.lines_read > 1000)
        progress_finish(&run.progress);
    fprintf(stderr,
            "eie-produce: %llu read, %llu sent, %llu acknowledged, %llu rejected, %llu failed, "
            "%d unconfirmed%s\n",
            (unsigned long long)run.lines_read, (unsigned long long)p->produced,
            (unsigned long long)p->acked, (unsigned long long)run.rejected,
            (unsigned long long)p->failed, outstanding, stop_requested ? " (interrupted)" : "");
    int ok = rc == 0 && !stop_requested && run.rejected == 0 && p->failed == 0 && outstanding == 0;
    if (p->failed || outstanding)
        log_error("%llu record%s not acknowledged%s%s", (unsigned long long)p->failed + (unsigned)outstanding,
                  p->failed + (unsigned)outstanding == 1 ? " was" : "s were",
                  p->last_error[0] ? ": last error: " : "", p->last_error);
    kafka_producer_close(p);
    config_props_free(&props);
    return ok ? 0 : 1;
}
