/* What the REST service's route files share: the application context handed to
 * every handler, the route table type, and the functions that register each
 * group of routes (one file per group). */
#ifndef EIE_API_H
#define EIE_API_H

#include <stdatomic.h>
#include <ulfius.h>

#include "auth.h"
#include "db_pool.h"
#include "metrics.h"

typedef struct ingest ingest;
typedef struct state_cache state_cache;
typedef struct rollup_cache rollup_cache;
typedef struct edge_batch edge_batch;
typedef struct edge_memo edge_memo;
typedef struct api_context api_context;

typedef int (*api_handler)(const struct _u_request *req, struct _u_response *resp,
                           api_context *ctx);

typedef struct api_route {
    const char *method;
    const char *path; /* ulfius format: "/v1/vehicles/:vehicleId" */
    api_handler handler;
    api_access access; /* who may call it (auth.h); unset: a read route */
} api_route;

#define API_MAX_SEGMENTS 8

/* A route with its context, and its path split into segments once (a
 * segment starting with ':' takes a parameter of that name). */
typedef struct api_binding {
    const api_route *route;
    api_context *ctx;
    char path[128];
    int n_segments;
    const char *segments[API_MAX_SEGMENTS]; /* into path */
} api_binding;

#define API_MAX_ROUTES 32

struct api_context {
    db_pool *db;
    metrics *metrics;
    ingest *ingest;              /* the Kafka side of the HTTP ingest routes */
    state_cache *state;          /* latest vehicle states in memory, or NULL */
    rollup_cache *rollups;       /* recent hourly summaries in memory, or NULL */
    edge_batch *edges;           /* sums over the history, batched across requests */
    edge_memo *memo;             /* sums of settled history ranges, or NULL */
    auth *auth;                  /* API keys; NULL: none (reads open, writes refused) */
    const char *swagger_ui_dir;  /* Swagger UI's assets, or NULL */
    long export_timeout_ms;      /* statement_timeout of an export's COPY (0: none) */
    int max_exports;             /* exports streaming at once; one more gets 503 */
    atomic_int exports_running;
    api_binding bindings[API_MAX_ROUTES];
    size_t n_bindings;
};

/* Registers routes with the router (api_route_request), which counts and
 * times each request by route and status in ctx->metrics. The table must
 * outlive the server. */
int api_register(api_context *ctx, const api_route *routes, size_t n);

/* The router: finds the request's route, sets its path parameters, checks
 * the request's key against the route's access (auth.h) and runs its
 * handler; *route is the route's path ("/v1/vehicles/:vehicleId"), or
 * "unmatched" (404); key_name the name of the key the request used ("" for
 * none). */
int api_route_dispatch(api_context *ctx, const struct _u_request *req, struct _u_response *resp,
                       const char **route, char key_name[API_KEY_NAME_MAX + 1]);
/* The route a request for method and url (raw, query and all) would reach,
 * or NULL: for checks made before the request's body is read. */
const api_route *api_route_match(const api_context *ctx, const char *method, const char *url);
/* Counts and times one request of the route in ctx->metrics. */
void api_route_count(api_context *ctx, const api_route *route, long status, double seconds);
/* The same in ulfius' callback form (user_data: the api_context). */
int api_route_request(const struct _u_request *req, struct _u_response *resp, void *user_data);

int routes_health_register(api_context *ctx);
int routes_analytics_register(api_context *ctx);
int routes_state_register(api_context *ctx);
int routes_history_register(api_context *ctx);
int routes_fleet_register(api_context *ctx);
int routes_sessions_register(api_context *ctx);
int routes_trends_register(api_context *ctx);
int routes_ingest_register(api_context *ctx);
int routes_export_register(api_context *ctx);
int routes_docs_register(api_context *ctx);
/* All of the above, in the order eie-api serves them (routes.c). */
int routes_register_all(api_context *ctx);

/* Largest request body (an ingest batch); a larger one gets 413. */
#define API_MAX_BODY_BYTES (1 << 20)

/* Longest a request waits for a pooled connection. */
#define API_POOL_WAIT_MS 2000

/* 1 when the vehicle is known (it has a state or an assignment); otherwise
 * the response is set, 404 (0) or the query's error (-1). */
int api_vehicle_known(api_context *ctx, struct _u_response *resp, const char *vehicle_id);

#endif
