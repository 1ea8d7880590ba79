/* Route registration with request metrics, and the pooled-query helper every
 * handler uses; see api.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "log.h"
#include "pg.h"
#include "respond.h"
#include "url.h"


static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

void api_route_count(api_context *ctx, const api_route *route, long status, double seconds)
{
    char labels[256];
    snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\",status=\"%ld\"", route->method,
             route->path, status);
    metrics_add(ctx->metrics, "eie_api_requests_total", labels, 1);
    snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\"", route->method, route->path);
    metrics_observe(ctx->metrics, "eie_api_request_seconds", labels, seconds);
}

static int dispatch(const struct _u_request *req, struct _u_response *resp, const api_binding *b,
                    char *key_name)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = auth_check(b->ctx->auth, b->route->access, req, resp, key_name) == 0
                 ? b->route->handler(req, resp, b->ctx)
                 : U_CALLBACK_COMPLETE;
    api_route_count(b->ctx, b->route, resp->status, seconds_since(&t0));
    return rc;
}

/* Splits path in place into its non-empty segments; -1 when there are more
 * than API_MAX_SEGMENTS. */
static int split_path(char *path, const char **segments)
{
    int n = 0;
    for (char *p = path; *p;) {
        while (*p == '/')
            *p++ = '\0';
        if (!*p)
            break;
        if (n == API_MAX_SEGMENTS)
            return -1;
        segments[n++] = p;
        while (*p && *p != '/')
            p++;
    }
    return n;
}

int api_register(api_context *ctx, const api_route *routes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ctx->n_bindings == API_MAX_ROUTES || strlen(routes[i].path) >= sizeof ctx->bindings[0].path)
            return -1;
        api_binding *b = &ctx->bindings[ctx->n_bindings++];
        *b = (api_binding){.route = &routes[i], .ctx = ctx};
        strcpy(b->path, routes[i].path);
        if ((b->n_segments = split_path(b->path, b->segments)) < 0)
            return -1;
    }
    return 0;
}

/* The first binding of method whose segments match, or NULL. */
static const api_binding *find_binding(const api_context *ctx, const char *method,
                                       const char *const *segments, int n)
{
    for (size_t i = 0; i < ctx->n_bindings; i++) {
        const api_binding *b = &ctx->bindings[i];
        if (b->n_segments != n || strcmp(b->route->method, method) != 0)
            continue;
        int k = 0;
        while (k < n && (b->segments[k][0] == ':' || strcmp(b->segments[k], segments[k]) == 0))
            k++;
        if (k == n)
            return b;
    }
    return NULL;
}

const api_route *api_route_match(const api_context *ctx, const char *method, const char *url)
{
    size_t len = strcspn(url, "?");
    char *path = malloc(len + 1);
    if (!path)
        return NULL;
    memcpy(path, url, len);
    path[len] = '\0';
    const char *segments[API_MAX_SEGMENTS];
    int n = split_path(path, segments);
    const api_binding *b = n >= 0 ? find_binding(ctx, method, segments, n) : NULL;
    free(path);
    return b ? b->route : NULL;
}

/* Routing of our own: ulfius compared each request's URL with every
 * registered endpoint, which took 11% of the CPU of the routes served from
 * memory. The raw path is split at '/', empty segments skipped,
 * case-sensitive; a parameter is its segment percent-decoded (a NUL or
 * another control character in it is refused, not cut), and replaces a query
 * parameter of the same name: the path names the resource. */
int api_route_dispatch(api_context *ctx, const struct _u_request *req, struct _u_response *resp,
                       const char **route, char key_name[API_KEY_NAME_MAX + 1])
{
    key_name[0] = '\0';
    size_t len = strcspn(req->http_url, "?");
    char *path = malloc(len + 1), *value = malloc(len + 1);
    const char *segments[API_MAX_SEGMENTS];
    int n = -1, rc = -1;
    if (path && value) {
        memcpy(path, req->http_url, len);
        path[len] = '\0';
        n = split_path(path, segments);
    }
    const api_binding *b = n >= 0 ? find_binding(ctx, req->http_verb, segments, n) : NULL;
    if (b) {
        *route = b->route->path;
        for (int k = 0; k < n && rc < 0; k++) {
            if (b->segments[k][0] != ':')
                continue;
            if (url_decode(segments[k], strlen(segments[k]), value) < 0)
                rc = respond_error(resp, 400, "invalid_parameter",
                                   "%s: a bad %%-escape or a control character", b->segments[k] + 1);
            else
                u_map_put(req->map_url, b->segments[k] + 1, value);
        }
        if (rc < 0)
            rc = dispatch(req, resp, b, key_name);
    }
    free(path);
    free(value);
    if (rc >= 0)
        return rc;
    *route = "unmatched";
    metrics_add(ctx->metrics, "eie_api_requests_total", "method=\"\",route=\"unmatched\",status=\"404\"",
                1);
    return respond_error(resp, 404, "not_found", "no such route; see /openapi.json");
}

int api_route_request(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
    const char *route;
    char key_name[API_KEY_NAME_MAX + 1];
    return api_route_dispatch(user_data, req, resp, &route, key_name);
}
