/* Counters, gauges and histograms, and the Prometheus text format that
 * operators scrape at /metrics (the API's, and each consumer's own port).
 * Thread-safe: request threads and the sink's threads update it while a scrape
 * reads it. Series are few (routes x statuses, reasons), so a short list under
 * one lock is enough. */
#ifndef EIE_METRICS_H
#define EIE_METRICS_H

#include <stdbool.h>

#include "err.h"
#include "strbuf.h"

typedef enum { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

typedef struct metrics metrics;

metrics *metrics_new(void);
void metrics_free(metrics *m);

/* Declares a metric family (its HELP and TYPE lines); series of undeclared
 * names are still written, untyped. */
void metrics_describe(metrics *m, const char *name, metric_type type, const char *help);

/* labels is the Prometheus label list without braces, e.g.
 * "route=\"/v1/vehicles/:id\",status=\"200\"", or "" for none. */
void metrics_add(metrics *m, const char *name, const char *labels, double delta);
void metrics_set(metrics *m, const char *name, const char *labels, double value);
/* Histograms take seconds, in buckets from 0.5 ms to 10 s. */
void metrics_observe(metrics *m, const char *name, const char *labels, double seconds);

/* Called at the start of every scrape, to refresh gauges computed on demand
 * (consumer lag, for one). */
void metrics_on_scrape(metrics *m, void (*fn)(metrics *m, void *arg), void *arg);

void metrics_write(metrics *m, strbuf *out);

/* Removes every series of a name: for gauges over a set that changes (the
 * partitions a consumer holds), rewritten whole at each scrape. */
void metrics_drop(metrics *m, const char *name);

/* Whether a process is ready; when not, reason says why (for /readyz). */
typedef bool (*metrics_ready_fn)(void *arg, strbuf *reason);

/* Serves GET /metrics on host:port from threads of its own; with ready, also
 * /healthz (the process answers) and /readyz (200, or 503 with the reason).
 * Returns NULL with err set when the port cannot be bound. */
typedef struct metrics_server metrics_server;
metrics_server *metrics_serve(metrics *m, const char *host, int port, metrics_ready_fn ready,
                              void *ready_arg, eie_err *err);
void metrics_server_stop(metrics_server *srv);

#endif
