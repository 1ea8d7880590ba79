/* HTTP ingest for upstream systems that cannot speak Kafka:
 * POST /v1/ingest/meter, POST /v1/ingest/vehicle (one reading or an array) and
 * PUT /v1/vehicles/{vehicleId}/assignment. Records are validated with the
 * consumers' rules, all of them before any is produced, and the answer (202)
 * comes only after Kafka acknowledged every one; otherwise the response says
 * which were. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "ingest.h"
#include "params.h"
#include "respond.h"
#include "timefmt.h"

#define MAX_RECORDS 1000

/* 415, 413 or 400 (no body) when the request is not something to parse; else 0. */
static int check_body(const struct _u_request *req, struct _u_response *resp)
{
    const char *type = u_map_get_case(req->map_header, "Content-Type");
    size_t n = type ? strcspn(type, "; ") : 0;
    if (!type || n != strlen("application/json") || strncasecmp(type, "application/json", n) != 0) {
        respond_error(resp, 415, "unsupported_media_type", "Content-Type must be application/json");
        return -1;
    }
    if (req->binary_body_length > API_MAX_BODY_BYTES) {
        respond_error(resp, 413, "payload_too_large", "the body is larger than %d bytes",
                      API_MAX_BODY_BYTES);
        return -1;
    }
    if (req->binary_body_length == 0) {
        respond_error(resp, 400, "invalid_body", "empty body: expected JSON");
        return -1;
    }
    return 0;
}

/* The request's JSON body, or NULL with the response (415, 413 or 400) set. */
static json_t *read_body(const struct _u_request *req, struct _u_response *resp)
{
    if (check_body(req, resp) < 0)
        return NULL;
    json_error_t jerr;
    json_t *body = json_loadb(req->binary_body, req->binary_body_length, 0, &jerr);
    if (!body)
        respond_error(resp, 400, "invalid_body", "not JSON: %s (line %d, column %d)", jerr.text,
                      jerr.line, jerr.column);
    return body;
}

/* "soc: 150 is outside 0..100 %" -> field "soc", message "150 is outside 0..100 %". */
static json_t *detail(size_t index, int with_index, const char *error)
{
    const char *colon = strstr(error, ": ");
    json_t *d = json_object();
    if (with_index)
        json_object_set_new(d, "index", json_integer((json_int_t)index));
    if (colon && strspn(error, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") ==
                     (size_t)(colon - error)) {
        json_object_set_new(d, "field", json_stringn(error, (size_t)(colon - error)));
        json_object_set_new(d, "message", json_string(colon + 2));
    } else {
        json_object_set_new(d, "message", json_string(error));
    }
    return d;
}

static int invalid(struct _u_response *resp, json_t *details, const char *message)
{
    return respond_json(resp, 400,
                        json_pack("{s:{s:i, s:s, s:s, s:o}}", "error", "status", 400, "code",
                                  "invalid_body", "message", message, "details", details));
}

/* Validates every record, then produces them all and waits for Kafka. */
static int produce_records(struct _u_response *resp, api_context *ctx, reading *records, size_t n,
                           json_t *accepted_body)
{
    unsigned char *status = calloc(n, 1);
    if (!status) {
        json_decref(accepted_body);
        return respond_error(resp, 503, "unavailable", "out of memory");
    }
    eie_err err;
    size_t acked = ingest_send(ctx->ingest, records, n, status, &err);
    int rc;
    if (acked == n) {
        rc = respond_json(resp, 202, accepted_body);
    } else {
        json_decref(accepted_body);
        json_t *ok = json_array(), *failed = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(status[i] ? ok : failed, json_integer((json_int_t)i));
        rc = respond_json(resp, 503,
                          json_pack("{s:{s:i, s:s, s:s}, s:o, s:o}", "error", "status", 503, "code",
                                    "unavailable", "message",
                                    "Kafka did not acknowledge every record; see accepted and failed",
                                    "accepted", ok, "failed", failed));
    }
    free(status);
    return rc;
}

static int post_readings(const struct _u_request *req, struct _u_response *resp, api_context *ctx,
                         reading_kind kind)
{
    json_t *body = read_body(req, resp);
    if (!body)
        return U_CALLBACK_COMPLETE;
    int is_array = json_is_array(body);
    size_t n = is_array ? json_array_size(body) : 1;
    if (is_array && n == 0) {
        json_decref(body);
        return respond_error(resp, 400, "invalid_body", "the array holds no readings");
    }
    if (n > MAX_RECORDS) {
        json_decref(body);
        return respond_error(resp, 413, "payload_too_large", "at most %d readings per request",
                             MAX_RECORDS);
    }
    reading *records = calloc(n, sizeof *records);
    json_t *details = json_array();
    int64_t now = timefmt_now_ms();
    for (size_t i = 0; records && i < n; i++) {
        eie_err err;
        const json_t *item = is_array ? json_array_get(body, i) : body;
        if (reading_from_json(item, (int)kind, &records[i], &err) < 0 ||
            reading_validate(&records[i], now, &err) < 0)
            json_array_append_new(details, detail(i, is_array, err.msg));
    }
    json_decref(body);
    int rc;
    if (!records) {
        json_decref(details);
        rc = respond_error(resp, 503, "unavailable", "out of memory");
    } else if (json_array_size(details) > 0) {
        rc = invalid(resp, details, "invalid readings; nothing was accepted");
    } else {
        json_decref(details);
        rc = produce_records(resp, ctx, records, n,
                             json_pack("{s:I, s:s}", "accepted", (json_int_t)n, "topic",
                                       ingest_topic(ctx->ingest, kind)));
    }
    free(records);
    return rc;
}

static int post_meter(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    return post_readings(req, resp, ctx, READING_METER);
}

static int post_vehicle(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    return post_readings(req, resp, ctx, READING_VEHICLE);
}

static int put_assignment(const struct _u_request *req, struct _u_response *resp, api_context *ctx)
{
    const char *vehicle_id;
    char msg[PARAM_MSG_LEN];
    if (param_device_id(req, "vehicleId", &vehicle_id, msg) < 0)
        return respond_error(resp, 400, "invalid_parameter", "%s", msg);
    json_t *body = read_body(req, resp);
    if (!body)
        return U_CALLBACK_COMPLETE;
    if (!json_is_object(body)) {
        json_decref(body);
        return respond_error(resp, 400, "invalid_body", "expected an object with meterId");
    }
    /* The vehicle comes from the path, validFrom defaults to now. */
    json_object_set_new(body, "vehicleId", json_string(vehicle_id));
    if (!json_object_get(body, "validFrom"))
        json_object_set_new(body, "validFrom", json_integer((json_int_t)timefmt_now_ms()));
    reading r;
    eie_err err;
    int bad = reading_from_json(body, READING_ASSIGNMENT, &r, &err) < 0 ||
              reading_validate(&r, timefmt_now_ms(), &err) < 0;
    json_decref(body);
    if (bad) {
        json_t *details = json_array();
        json_array_append_new(details, detail(0, 0, err.msg));
        return invalid(resp, details, "invalid assignment; nothing was accepted");
    }
    char from[TIMEFMT_RFC3339_LEN];
    timefmt_format_rfc3339(r.u.assignment.valid_from_ms, from);
    return produce_records(resp, ctx, &r, 1,
                           json_pack("{s:s, s:s, s:s}", "vehicleId", r.u.assignment.vehicle_id,
                                     "meterId", r.u.assignment.meter_id, "validFrom", from));
}

static const api_route routes[] = {
    {"POST", "/v1/ingest/meter", post_meter, API_ACCESS_WRITE},
    {"POST", "/v1/ingest/vehicle", post_vehicle, API_ACCESS_WRITE},
    {"PUT", "/v1/vehicles/:vehicleId/assignment", put_assignment, API_ACCESS_WRITE},
};

int routes_ingest_register(api_context *ctx)
{
    return api_register(ctx, routes, sizeof routes / sizeof routes[0]);
}
