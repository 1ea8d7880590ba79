/* eie-produce: the importer. Reads readings as JSON Lines (one object per line,
 * the field names clients use) or CSV (a header line naming those fields) from
 * files or stdin and produces them to our topics. A record counts as sent only
 * when Kafka acknowledged it; bad lines are reported with their line number and
 * skipped (or stop the run with --strict); the exit status is non-zero if any
 * line was rejected or any record was not acknowledged. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "config.h"
#include "csv_rows.h"
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

typedef enum { FORMAT_AUTO, FORMAT_JSONL, FORMAT_CSV } input_format;

typedef struct produce_run {
    kafka_producer producer;
    int kind; /* -1: tell each line's kind from its fields */
    input_format format;
    bool strict;
    uint64_t lines_read, rejected;
    progress progress;
} produce_run;

/* The reading on one line, as a JSON object (new reference), or NULL with err. */
static json_t *parse_line(input_format format, const csv_header *header, const char *line,
                          size_t len, eie_err *err)
{
    if (format == FORMAT_CSV)
        return csv_row_to_json(header, line, len, err);
    json_error_t jerr;
    json_t *obj = json_loadb(line, len, 0, &jerr);
    if (!obj)
        eie_err_set(err, "not JSON: %s (column %d)", jerr.text, jerr.column);
    return obj;
}

/* Returns -1 only when the run must stop (--strict, or the producer failed). */
static int produce_line(produce_run *run, input_format format, const csv_header *header,
                        const char *file, uint64_t line_no, const char *line, size_t len)
{
    run->lines_read++;
    eie_err err;
    reading r;
    json_t *obj = parse_line(format, header, line, len, &err);
    if (obj && reading_from_json(obj, run->kind, &r, &err) == 0 &&
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

static input_format format_of(const produce_run *run, const char *path)
{
    if (run->format != FORMAT_AUTO)
        return run->format;
    size_t n = strlen(path);
    return n > 4 && strcmp(path + n - 4, ".csv") == 0 ? FORMAT_CSV : FORMAT_JSONL;
}

static int produce_file(produce_run *run, const char *path)
{
    int is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    input_format format = format_of(run, path);
    FILE *in = is_stdin ? stdin : fopen(path, "r");
    if (!in) {
        log_error("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    uint64_t line_no = 0;
    int rc = 0, have_header = 0;
    csv_header header = {0};
    while (!stop_requested && (got = getline(&line, &cap, in)) >= 0) {
        size_t len = (size_t)got;
        line_no++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (strspn(line, " \t") >= len)
            continue; /* blank lines are not readings */
        if (format == FORMAT_CSV && !have_header) {
            eie_err err;
            if (csv_header_parse(&header, line, len, &err) < 0) {
                log_error("%s:%llu: %s", name, (unsigned long long)line_no, err.msg);
                rc = -1;
                break;
            }
            have_header = 1;
            continue;
        }
        if ((rc = produce_line(run, format, &header, name, line_no, line, len)) < 0)
            break;
        progress_update(&run->progress, run->producer.acked);
    }
    if (rc == 0 && ferror(in)) {
        log_error("reading %s: %s", name, strerror(errno));
        rc = -1;
    }
    csv_header_free(&header);
    free(line);
    if (!is_stdin)
        fclose(in);
    return rc;
}

int main(int argc, char **argv)
{
    log_init("eie-produce");
    const char *bootstrap, *prefix, *type, *format;
    long flush_timeout_ms, vehicle_schema;
    produce_run run = {.kind = -1};
    config_option options[] = {
        KAFKA_OPTION_BOOTSTRAP(&bootstrap),
        KAFKA_OPTION_TOPIC_PREFIX(&prefix),
        {"type", 't', "EIE_PRODUCE_TYPE", CONFIG_STRING, &type, "auto", 0, 0,
         "meter, vehicle, assignment, or auto (told from each line's fields)"},
        {"format", 'f', "EIE_PRODUCE_FORMAT", CONFIG_STRING, &format, "auto", 0, 0,
         "jsonl, csv, or auto (csv for *.csv files, jsonl otherwise)"},
        {"strict", 0, "EIE_PRODUCE_STRICT", CONFIG_FLAG, &run.strict, NULL, 0, 0,
         "stop at the first bad line instead of skipping it"},
        {"vehicle-schema", 0, "EIE_VEHICLE_SCHEMA", CONFIG_INT, &vehicle_schema, "0", 0, 1000,
         "write vehicle readings with this schema version (0: the newest), for upgrades"},
        {"flush-timeout-ms", 0, "EIE_FLUSH_TIMEOUT_MS", CONFIG_INT, &flush_timeout_ms, "60000", 0,
         3600000, "how long to wait for the last acknowledgements"},
    };
    config_spec spec = {
        "eie-produce", "[options] [FILE...]",
        "Produces meter readings, vehicle readings and assignments from the FILEs (or\n"
        "standard input, also as '-') to Kafka in Avro single-object encoding: JSON Lines,\n"
        "one object per line, or CSV with a header line naming the fields. Idempotent\n"
        "producer, acks=all. Exits 0 only when every line was valid and every record was\n"
        "acknowledged. Examples:\n"
        "  {\"vehicleId\":\"V1\",\"soc\":80.5,\"kwhDeliveredDc\":0.12,\"batteryTemp\":34.2,"
        "\"timestamp\":\"2026-02-09T13:08:00Z\"}\n"
        "  meterId,kwhConsumedAc,voltage,timestamp\n"
        "  M1,0.25,230.1,2026-02-09T13:08:00Z",
        options, sizeof options / sizeof options[0], true, true};
    config_props props = {0};
    int first;
    int status = kafka_config_main(&spec, argc, argv, &props, &first);
    if (status >= 0)
        return status;
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
    if (strcmp(format, "auto") == 0 || strcmp(format, "jsonl") == 0 || strcmp(format, "csv") == 0) {
        run.format = format[0] == 'a' ? FORMAT_AUTO : format[0] == 'j' ? FORMAT_JSONL : FORMAT_CSV;
    } else {
        fprintf(stderr, "eie-produce: invalid --format (EIE_PRODUCE_FORMAT) '%s': expected jsonl, "
                        "csv or auto\n", format);
        config_props_free(&props);
        return 2;
    }
    eie_err err;
    kafka_topics topics;
    if (kafka_topics_init(&topics, prefix, &err) < 0) {
        fprintf(stderr, "eie-produce: --topic-prefix: %s\n", err.msg);
        config_props_free(&props);
        return 2;
    }
    int versions[READING_KIND_COUNT] = {0};
    versions[READING_VEHICLE] = (int)vehicle_schema;
    /* A version the codec does not know is bad usage, said before connecting. */
    codec *check = codec_new_versions(versions, &err);
    if (!check) {
        fprintf(stderr, "eie-produce: invalid --vehicle-schema (EIE_VEHICLE_SCHEMA) '%ld': %s\n",
                vehicle_schema, err.msg);
        config_props_free(&props);
        return 2;
    }
    codec_free(check);
    if (kafka_producer_open(&run.producer, bootstrap, &props, &topics, versions, &err) < 0) {
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
    char fatal_reason[512];
    bool fatal = kafka_fatal_stop(fatal_reason, sizeof fatal_reason);
    if (run.lines_read > 1000)
        progress_finish(&run.progress);
    fprintf(stderr,
            "eie-produce: %llu read, %llu sent, %llu acknowledged, %llu rejected, %llu failed, "
            "%d unconfirmed%s\n",
            (unsigned long long)run.lines_read, (unsigned long long)p->produced,
            (unsigned long long)p->acked, (unsigned long long)run.rejected,
            (unsigned long long)p->failed, outstanding,
            fatal ? " (stopped: Kafka fatal error)" : stop_requested ? " (interrupted)" : "");
    int ok = rc == 0 && !stop_requested && run.rejected == 0 && p->failed == 0 && outstanding == 0;
    if (p->failed || outstanding)
        log_error("%llu record%s not acknowledged%s%s", (unsigned long long)p->failed + (unsigned)outstanding,
                  p->failed + (unsigned)outstanding == 1 ? " was" : "s were",
                  p->last_error[0] ? ": last error: " : "", p->last_error);
    if (fatal)
        log_error("stopped: %s", fatal_reason);
    kafka_producer_close(p);
    config_props_free(&props);
    return ok ? 0 : 1;
}
