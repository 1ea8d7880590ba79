/* Operator routes: /healthz (the process serves requests), /readyz (and
 * PostgreSQL and Kafka answer), /metrics (Prometheus text: requests and their
 * latency by route and status). */
#include "api.h"
#include "data.h"
#include "ingest.h"
#include "respond.h"

#define READY_WAIT_MS 1000

static int get_healthz(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    return respond_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static int get_readyz(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    int db_ok = data_ready(ctx, READY_WAIT_MS);
    int kafka_ok = ingest_kafka_reachable(ctx->ingest, READY_WAIT_MS);
    int ready = db_ok && kafka_ok;
    return respond_json(resp, ready ? 200 : 503,
                        json_pack("{s:s, s:{s:s, s:s}}", "status", ready ? "ready" : "not_ready",
                                  "checks", "postgres", db_ok ? "ok" : "unreachable", "kafka",
                                  kafka_ok ? "ok" : "unreachable"));
}

static int get_metrics(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    strbuf out = STRBUF_INIT;
    metrics_write(ctx->metrics, &out);
    ulfius_set_binary_body_response(resp, 200, out.data ? out.data : "", out.len);
    u_map_put(resp->map_header, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    strbuf_free(&out);
    return U_CALLBACK_COMPLETE;
}

static const api_route routes[] = {
    /* Probes need no key; the metrics are read like the data. */
    {"GET", "/healthz", get_healthz, API_ACCESS_PUBLIC},
    {"GET", "/readyz", get_readyz, API_ACCESS_PUBLIC},
    {"GET", "/metrics", get_metrics, API_ACCESS_READ},
};

int routes_health_register(api_context *ctx)
{
    metrics_describe(ctx->metrics, "eie_api_requests_total", METRIC_COUNTER,
                     "HTTP requests by method, route and status");
    metrics_describe(ctx->metrics, "eie_api_request_seconds", METRIC_HISTOGRAM,
                     "HTTP request latency by method and route");
    return api_register(ctx, routes, sizeof routes / sizeof routes[0]);
}
