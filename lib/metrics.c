/* Metrics registry and Prometheus text; see metrics.h. */
#include "metrics.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <ulfius.h>

static const double bucket_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                       0.05,   0.1,   0.25,   0.5,   1,    2.5, 5, 10};
#define N_BUCKETS (sizeof bucket_bounds / sizeof bucket_bounds[0])

typedef struct series {
    char *name, *labels;
    metric_type type;
    double value; /* counter or gauge; sum for a histogram */
    unsigned long long count, buckets[N_BUCKETS];
} series;

typedef struct family {
    char *name, *help;
    metric_type type;
} family;

struct metrics {
    pthread_mutex_t lock;
    series *series;
    size_t n_series, cap_series;
    family *families;
    size_t n_families;
    void (*on_scrape)(metrics *m, void *arg);
    void *on_scrape_arg;
};

static char *dup_or_die(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

metrics *metrics_new(void)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_series; i++) {
        free(m->series[i].name);
        free(m->series[i].labels);
    }
    for (size_t i = 0; i < m->n_families; i++) {
        free(m->families[i].name);
        free(m->families[i].help);
    }
    free(m->series);
    free(m->families);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void metrics_describe(metrics *m, const char *name, metric_type type, const char *help)
{
    pthread_mutex_lock(&m->lock);
    m->families = realloc(m->families, (m->n_families + 1) * sizeof *m->families);
    if (!m->families)
        abort();
    m->families[m->n_families++] = (family){dup_or_die(name), dup_or_die(help), type};
    pthread_mutex_unlock(&m->lock);
}

/* Called with the lock held. */
static series *find(metrics *m, const char *name, const char *labels, metric_type type)
{
    for (size_t i = 0; i < m->n_series; i++)
        if (strcmp(m->series[i].name, name) == 0 && strcmp(m->series[i].labels, labels) == 0)
            return &m->series[i];
    if (m->n_series == m->cap_series) {
        m->cap_series = m->cap_series ? m->cap_series * 2 : 32;
        m->series = realloc(m->series, m->cap_series * sizeof *m->series);
        if (!m->series)
            abort();
    }
    series *s = &m->series[m->n_series++];
    memset(s, 0, sizeof *s);
    s->name = dup_or_die(name);
    s->labels = dup_or_die(labels);
    s->type = type;
    return s;
}

void metrics_add(metrics *m, const char *name, const char *labels, double delta)
{
    pthread_mutex_lock(&m->lock);
    find(m, name, labels, METRIC_COUNTER)->value += delta;
    pthread_mutex_unlock(&m->lock);
}

void metrics_set(metrics *m, const char *name, const char *labels, double value)
{
    pthread_mutex_lock(&m->lock);
    find(m, name, labels, METRIC_GAUGE)->value = value;
    pthread_mutex_unlock(&m->lock);
}

void metrics_observe(metrics *m, const char *name, const char *labels, double seconds)
{
    pthread_mutex_lock(&m->lock);
    series *s = find(m, name, labels, METRIC_HISTOGRAM);
    s->value += seconds;
    s->count++;
    for (size_t b = 0; b < N_BUCKETS; b++)
        if (seconds <= bucket_bounds[b])
            s->buckets[b]++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_drop(metrics *m, const char *name)
{
    pthread_mutex_lock(&m->lock);
    size_t kept = 0;
    for (size_t i = 0; i < m->n_series; i++) {
        if (strcmp(m->series[i].name, name) == 0) {
            free(m->series[i].name);
            free(m->series[i].labels);
        } else {
            m->series[kept++] = m->series[i];
        }
    }
    m->n_series = kept;
    pthread_mutex_unlock(&m->lock);
}

void metrics_on_scrape(metrics *m, void (*fn)(metrics *m, void *arg), void *arg)
{
    m->on_scrape = fn;
    m->on_scrape_arg = arg;
}

static void write_series(const series *s, strbuf *out)
{
    const char *sep = s->labels[0] ? "," : "";
    if (s->type != METRIC_HISTOGRAM) {
        if (s->labels[0])
            strbuf_printf(out, "%s{%s} %.17g\n", s->name, s->labels, s->value);
        else
            strbuf_printf(out, "%s %.17g\n", s->name, s->value);
        return;
    }
    for (size_t b = 0; b < N_BUCKETS; b++)
        strbuf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", s->name, s->labels, sep,
                      bucket_bounds[b], s->buckets[b]);
    strbuf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", s->name, s->labels, sep, s->count);
    strbuf_printf(out, "%s_sum%s%s%s %.17g\n", s->name, s->labels[0] ? "{" : "", s->labels,
                  s->labels[0] ? "}" : "", s->value);
    strbuf_printf(out, "%s_count%s%s%s %llu\n", s->name, s->labels[0] ? "{" : "", s->labels,
                  s->labels[0] ? "}" : "", s->count);
}

void metrics_write(metrics *m, strbuf *out)
{
    if (m->on_scrape)
        m->on_scrape(m, m->on_scrape_arg);
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&m->lock);
    /* Families in declaration order, each with its series; then the rest. */
    char *written = calloc(m->n_series ? m->n_series : 1, 1);
    if (!written)
        abort();
    for (size_t f = 0; f < m->n_families; f++) {
        strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->families[f].name, m->families[f].help,
                      m->families[f].name, type_names[m->families[f].type]);
        for (size_t i = 0; i < m->n_series; i++) {
            if (!written[i] && strcmp(m->series[i].name, m->families[f].name) == 0) {
                write_series(&m->series[i], out);
                written[i] = 1;
            }
        }
    }
    for (size_t i = 0; i < m->n_series; i++)
        if (!written[i])
            write_series(&m->series[i], out);
    free(written);
    pthread_mutex_unlock(&m->lock);
}

/* ---- Serving ---- */

struct metrics_server {
    struct _u_instance instance;
    metrics_ready_fn ready;
    void *ready_arg;
};

static int serve_metrics(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
    strbuf out = STRBUF_INIT;
    metrics_write(user_data, &out);
    ulfius_set_binary_body_response(resp, 200, out.data ? out.data : "", out.len);
    u_map_put(resp->map_header, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    strbuf_free(&out);
    return U_CALLBACK_COMPLETE;
}

static int serve_healthz(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
    ulfius_set_string_body_response(resp, 200, "{\"status\":\"ok\"}");
    u_map_put(resp->map_header, "Content-Type", "application/json");
    return U_CALLBACK_COMPLETE;
}

static int serve_readyz(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
    const metrics_server *srv = user_data;
    strbuf reason = STRBUF_INIT;
    bool ready = srv->ready(srv->ready_arg, &reason);
    json_t *body = ready ? json_pack("{s:s}", "status", "ready")
                         : json_pack("{s:s, s:s}", "status", "not_ready", "reason",
                                     reason.data ? reason.data : "");
    ulfius_set_json_body_response(resp, ready ? 200 : 503, body);
    json_decref(body);
    strbuf_free(&reason);
    return U_CALLBACK_COMPLETE;
}

metrics_server *metrics_serve(metrics *m, const char *host, int port, metrics_ready_fn ready,
                              void *ready_arg, eie_err *err)
{
    metrics_server *srv = calloc(1, sizeof *srv);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (!srv || inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        eie_err_set(err, "metrics: invalid address %s", host);
        free(srv);
        return NULL;
    }
    if (ulfius_init_instance(&srv->instance, (unsigned)port, &addr, NULL) != U_OK) {
        eie_err_set(err, "metrics: cannot set up a server on %s:%d", host, port);
        free(srv);
        return NULL;
    }
    srv->instance.allowed_post_processor = U_POST_PROCESS_NONE;
    ulfius_add_endpoint_by_val(&srv->instance, "GET", "/metrics", NULL, 0, serve_metrics, m);
    if (ready) {
        srv->ready = ready;
        srv->ready_arg = ready_arg;
        ulfius_add_endpoint_by_val(&srv->instance, "GET", "/healthz", NULL, 0, serve_healthz, NULL);
        ulfius_add_endpoint_by_val(&srv->instance, "GET", "/readyz", NULL, 0, serve_readyz, srv);
    }
    if (ulfius_start_framework(&srv->instance) != U_OK) {
        eie_err_set(err, "metrics: cannot listen on %s:%d (is the port in use?)", host, port);
        ulfius_clean_instance(&srv->instance);
        free(srv);
        return NULL;
    }
    return srv;
}

void metrics_server_stop(metrics_server *srv)
{
    if (!srv)
        return;
    ulfius_stop_framework(&srv->instance);
    ulfius_clean_instance(&srv->instance);
    free(srv);
}
