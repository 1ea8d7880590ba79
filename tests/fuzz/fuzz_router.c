/* Fuzzes the router (api_route_request) over eie-api's own route table, with
 * each handler replaced by a stub, so no server, database or Kafka is needed.
 * The input's first byte picks the method (and whether the query already holds
 * a parameter of each path parameter's name, which the router then joins), the
 * rest is the request's URL as ulfius hands it over. A request must reach the
 * handler of the first route a plain matcher written here finds, with its path
 * parameters set, or be answered 404 when there is none; 400 is the only other
 * answer, for a path parameter the router refuses. */
#include "api.h"
#include "url.h"
#include "fuzz.h"

#define STUB_STATUS 299

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "get", ""};
#define N_METHODS (sizeof methods / sizeof methods[0])

static api_context ctx;
static api_route stubs[API_MAX_ROUTES];
static int handled;

static int stub_handler(const struct _u_request *req, struct _u_response *resp, api_context *c)
{
    handled++;
    resp->status = STUB_STATUS;
    return U_CALLBACK_COMPLETE;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ctx.metrics = metrics_new();
    if (!ctx.metrics || routes_register_all(&ctx) < 0)
        abort();
    for (size_t i = 0; i < ctx.n_bindings; i++) {
        stubs[i] = *ctx.bindings[i].route;
        stubs[i].handler = stub_handler;
        stubs[i].access = API_ACCESS_PUBLIC; /* routing only; keys are auth.c's */
        ctx.bindings[i].route = &stubs[i];
    }
    return 0;
}

/* The reference matcher: the binding a request should reach, or NULL. */
static const api_binding *expected_binding(const char *method, const char *url,
                                           char segs[][8192], int *n_segs)
{
    size_t len = strcspn(url, "?");
    if (len >= 8192)
        return NULL; /* longer than any input here */
    int n = 0;
    for (size_t i = 0; i < len;) {
        if (url[i] == '/') {
            i++;
            continue;
        }
        size_t seg = strcspn(url + i, "/?");
        if (n == API_MAX_SEGMENTS)
            return NULL;
        memcpy(segs[n], url + i, seg);
        segs[n++][seg] = '\0';
        i += seg;
    }
    *n_segs = n;
    for (size_t b = 0; b < ctx.n_bindings; b++) {
        const api_binding *bd = &ctx.bindings[b];
        if (bd->n_segments != n || strcmp(bd->route->method, method) != 0)
            continue;
        int k = 0;
        while (k < n && (bd->segments[k][0] == ':' || strcmp(bd->segments[k], segs[k]) == 0))
            k++;
        if (k == n)
            return bd;
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *method = methods[data[0] % N_METHODS];
    int preset = data[0] / N_METHODS % 2;
    struct _u_request req;
    struct _u_response resp;
    if (ulfius_init_request(&req) != U_OK || ulfius_init_response(&resp) != U_OK)
        abort();
    req.http_verb = strdup(method);
    req.http_url = fuzz_cstring(data + 1, size - 1);
    static char segs[API_MAX_SEGMENTS][8192];
    int n = 0;
    const api_binding *want = expected_binding(method, req.http_url, segs, &n);
    if (preset && want)
        for (int k = 0; k < n; k++)
            if (want->segments[k][0] == ':')
                u_map_put(req.map_url, want->segments[k] + 1, "q");

    handled = 0;
    api_route_request(&req, &resp, &ctx);
    if (!want) {
        /* Unknown: 404; or refused before matching (an over-long path
         * gets the same 400 as an over-long id). Never dispatched. */
        FUZZ_CHECK(handled == 0 && (resp.status == 404 || resp.status == 400));
    } else if (resp.status == STUB_STATUS) {
        FUZZ_CHECK(handled == 1);
        for (int k = 0; k < n; k++) {
            if (want->segments[k][0] != ':')
                continue;
            const char *got = u_map_get(req.map_url, want->segments[k] + 1);
            static char decoded[8192];
            FUZZ_CHECK(got != NULL &&
                       url_decode(segs[k], strlen(segs[k]), decoded) == 0);
            /* The path's value replaces a query parameter of the same name
             * (preset), never joins it. */
            FUZZ_CHECK(strcmp(got, decoded) == 0);
        }
    } else {
        FUZZ_CHECK(handled == 0 && resp.status == 400);
    }
    ulfius_clean_request(&req);
    ulfius_clean_response(&resp);
    return 0;
}
