/* The API's own description: GET /openapi.json (the OpenAPI 3 document,
 * compiled in from api/openapi.json), GET /docs (Swagger UI, whose assets come
 * from a local copy of the swagger-ui-dist package, never from a CDN). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "embedded.h"
#include "respond.h"

extern const eie_embedded_file api_embedded_docs[];

#define MAX_ASSET_BYTES (16 << 20)

static const char *embedded(const char *name)
{
    for (const eie_embedded_file *f = api_embedded_docs; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f->text;
    return NULL;
}

static int send_text(struct _u_response *resp, const char *text, const char *type)
{
    ulfius_set_string_body_response(resp, 200, text);
    u_map_put(resp->map_header, "Content-Type", type);
    return U_CALLBACK_COMPLETE;
}

static int get_openapi(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    const char *doc = embedded("openapi.json");
    return doc ? send_text(resp, doc, "application/json")
               : respond_error(resp, 404, "not_found", "this build has no OpenAPI document");
}

static int get_docs(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    const char *page = embedded("docs.html");
    return page ? send_text(resp, page, "text/html; charset=utf-8")
                : respond_error(resp, 404, "not_found", "this build has no documentation page");
}

static const char *content_type(const char *name)
{
    const char *ext = strrchr(name, '.');
    return !ext                       ? "application/octet-stream"
           : strcmp(ext, ".css") == 0  ? "text/css; charset=utf-8"
           : strcmp(ext, ".js") == 0   ? "text/javascript; charset=utf-8"
                                       : "application/octet-stream";
}

/* Only the files docs.html loads: the package also holds its package.json,
 * README, source maps and bundles the page never asks for. */
static const char *const page_assets[] = {
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
};

static int page_asset(const char *name)
{
    for (size_t i = 0; name && i < sizeof page_assets / sizeof page_assets[0]; i++)
        if (strcmp(name, page_assets[i]) == 0)
            return 1;
    return 0;
}

static int get_asset(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    const char *name = u_map_get(req->map_url, "file");
    if (!page_asset(name))
        return respond_error(resp, 404, "not_found", "no such file");
    if (!ctx->swagger_ui_dir)
        return respond_error(resp, 404, "not_found",
                             "Swagger UI assets are not installed (set EIE_SWAGGER_UI_DIR)");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", ctx->swagger_ui_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return respond_error(resp, 404, "not_found", "no such file");
    char *data = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size <= MAX_ASSET_BYTES &&
        fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)size + 1)) &&
        fread(data, 1, (size_t)size, f) == (size_t)size) {
        ulfius_set_binary_body_response(resp, 200, data, (size_t)size);
        u_map_put(resp->map_header, "Content-Type", content_type(name));
        u_map_put(resp->map_header, "Cache-Control", "public, max-age=3600");
    } else {
        respond_error(resp, 404, "not_found", "no such file");
    }
    free(data);
    fclose(f);
    return U_CALLBACK_COMPLETE;
}

static const api_route routes[] = {
    /* Public, or no one could find out how to get in (Swagger UI's Authorize). */
    {"GET", "/openapi.json", get_openapi, API_ACCESS_PUBLIC},
    {"GET", "/docs", get_docs, API_ACCESS_PUBLIC},
    {"GET", "/docs/", get_docs, API_ACCESS_PUBLIC},
    {"GET", "/docs/:file", get_asset, API_ACCESS_PUBLIC},
};

int routes_docs_register(api_context *ctx)
{
    return api_register(ctx, routes, sizeof routes / sizeof routes[0]);
}
