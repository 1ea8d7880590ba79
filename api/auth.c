/* API keys checked per request; see auth.h.
 *
 * The keys and their buckets sit under one mutex, held only to find a hash
 * and take a token: a reload parses the file outside it and swaps the new
 * table in, so no request ever sees half a table and none holds a pointer
 * into one after the lock is released (the old table is freed at once).
 * The presented key is hashed before the lock; the key itself goes nowhere
 * but into that hash: logs and metrics name keys by their names. */
#include "auth.h"

#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "respond.h"
#include "timefmt.h"
#include "token_bucket.h"

struct auth {
    pthread_mutex_t lock;
    api_key_list keys;
    token_bucket *buckets; /* one per key, in the keys' order */
    auth_settings settings;
    metrics *metrics;
};

int auth_reads_need_key(const char *mode, const struct in_addr *listen_address)
{
    if (strcmp(mode, "open") == 0)
        return 0;
    if (strcmp(mode, "key") == 0)
        return 1;
    if (strcmp(mode, "auto") == 0)
        return (ntohl(listen_address->s_addr) >> 24) != 127;
    return -1;
}

static int load(const auth_settings *s, api_key_list *keys, eie_err *err)
{
    if (s->keys_file)
        return api_keys_load_file(s->keys_file, keys, err);
    if (s->keys_text)
        return api_keys_parse(s->keys_text, strlen(s->keys_text), keys, err);
    *keys = (api_key_list){0};
    return 0;
}

/* Buckets for keys, each carried over from the old key of the same hash (a
 * reload must not hand every key a full bucket), else full. */
static token_bucket *new_buckets(const auth *a, const api_key_list *keys, int64_t now_ms)
{
    token_bucket *b = calloc(keys->n ? keys->n : 1, sizeof *b);
    for (size_t i = 0; b && i < keys->n; i++) {
        const api_key_entry *e = &keys->items[i];
        token_bucket_init(&b[i], e->rate >= 0 ? e->rate : a->settings.write_rate,
                          e->burst >= 0 ? e->burst : a->settings.write_burst, now_ms);
        const api_key_entry *old = api_keys_find(&a->keys, e->hash);
        if (old) {
            const token_bucket *ob = &a->buckets[old - a->keys.items];
            b[i].tokens = fmin(ob->tokens, b[i].burst);
            b[i].last_ms = ob->last_ms;
        }
    }
    return b;
}

static void count_keys(auth *a)
{
    metrics_set(a->metrics, "eie_api_keys", "", (double)a->keys.n);
}

auth *auth_open(const auth_settings *settings, metrics *m, eie_err *err)
{
    if (sodium_init() < 0) {
        eie_err_set(err, "libsodium could not be initialised");
        return NULL;
    }
    auth *a = calloc(1, sizeof *a);
    if (!a) {
        eie_err_set(err, "out of memory");
        return NULL;
    }
    a->settings = *settings;
    a->metrics = m;
    api_key_list keys;
    if (load(settings, &keys, err) < 0) {
        free(a);
        return NULL;
    }
    /* no old keys to carry over */
    if (!(a->buckets = new_buckets(a, &keys, timefmt_monotonic_ms()))) {
        eie_err_set(err, "out of memory");
        api_keys_free(&keys);
        free(a);
        return NULL;
    }
    a->keys = keys;
    pthread_mutex_init(&a->lock, NULL);
    metrics_describe(m, "eie_api_keys", METRIC_GAUGE, "API keys loaded");
    metrics_describe(m, "eie_api_key_reloads_total", METRIC_COUNTER,
                     "reloads of the key file (SIGHUP) by outcome; a failed one keeps the keys");
    metrics_describe(m, "eie_api_key_requests_total", METRIC_COUNTER,
                     "requests that presented a known key, by the key's name and outcome "
                     "(allowed, forbidden: role too low, rate_limited: 429)");
    metrics_describe(m, "eie_api_auth_failures_total", METRIC_COUNTER,
                     "requests refused with 401, by reason (missing, unknown key)");
    count_keys(a);
    return a;
}

void auth_free(auth *a)
{
    if (!a)
        return;
    api_keys_free(&a->keys);
    free(a->buckets);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

int auth_reload(auth *a, eie_err *err)
{
    api_key_list keys;
    int rc = load(&a->settings, &keys, err);
    if (rc == 0) {
        pthread_mutex_lock(&a->lock);
        token_bucket *buckets = new_buckets(a, &keys, timefmt_monotonic_ms());
        if (buckets) {
            api_key_list old = a->keys;
            free(a->buckets);
            a->keys = keys;
            a->buckets = buckets;
            keys = old; /* freed below */
        } else {
            eie_err_set(err, "out of memory");
            rc = -1;
        }
        count_keys(a);
        pthread_mutex_unlock(&a->lock);
        api_keys_free(&keys);
    }
    metrics_add(a->metrics, "eie_api_key_reloads_total",
                rc == 0 ? "outcome=\"ok\"" : "outcome=\"failed\"", 1);
    return rc;
}

size_t auth_key_count(auth *a)
{
    pthread_mutex_lock(&a->lock);
    size_t n = a->keys.n;
    pthread_mutex_unlock(&a->lock);
    return n;
}

/* The key the request presents (its bytes are not NUL-terminated at *len),
 * or NULL. Authorization: Bearer comes first, as Swagger UI sends it. */
static const char *presented_key(const struct _u_request *req, size_t *len)
{
    const char *key = NULL;
    const char *authorization = u_map_get_case(req->map_header, "Authorization");
    if (authorization && strncasecmp(authorization, "Bearer ", 7) == 0)
        key = authorization + 7;
    else
        key = u_map_get_case(req->map_header, "X-API-Key");
    if (!key)
        return NULL;
    key += strspn(key, " \t");
    *len = strlen(key);
    while (*len > 0 && (key[*len - 1] == ' ' || key[*len - 1] == '\t'))
        (*len)--;
    return *len > 0 ? key : NULL;
}

static int unauthorized(auth *a, struct _u_response *resp, const char *reason, const char *fmt)
{
    char labels[64];
    snprintf(labels, sizeof labels, "reason=\"%s\"", reason);
    if (a)
        metrics_add(a->metrics, "eie_api_auth_failures_total", labels, 1);
    respond_error(resp, 401, "unauthorized", "%s", fmt);
    u_map_put(resp->map_header, "WWW-Authenticate",
              strcmp(reason, "missing") == 0 ? "Bearer realm=\"eie-api\""
                                              : "Bearer realm=\"eie-api\", error=\"invalid_token\"");
    return -1;
}

static void count_key(auth *a, const char *name, const char *outcome)
{
    char labels[API_KEY_NAME_MAX + 64];
    snprintf(labels, sizeof labels, "key=\"%s\",outcome=\"%s\"", name, outcome);
    metrics_add(a->metrics, "eie_api_key_requests_total", labels, 1);
}

static int check(auth *a, api_access access, const struct _u_request *req, struct _u_response *resp,
                 char key_name[API_KEY_NAME_MAX + 1], bool spend)
{
    key_name[0] = '\0';
    if (access == API_ACCESS_PUBLIC || (access == API_ACCESS_READ && (!a || !a->settings.reads_need_key)))
        return 0;
    size_t len = 0;
    const char *key = presented_key(req, &len);
    if (!key)
        return unauthorized(a, resp, "missing",
                            "this route needs an API key: send Authorization: Bearer KEY or "
                            "X-API-Key: KEY");
    if (!a)
        return unauthorized(a, resp, "unknown", "the API key is not valid");
    unsigned char hash[API_KEY_HASH_BYTES];
    api_key_hash(key, len, hash);

    api_role needed = access == API_ACCESS_ADMIN   ? API_ROLE_ADMIN
                      : access == API_ACCESS_WRITE ? API_ROLE_WRITE
                                                   : API_ROLE_READ;
    api_role role = API_ROLE_READ;
    bool found = false, allowed = false;
    int64_t retry_ms = 0;
    double rate = 0, burst = 0;
    pthread_mutex_lock(&a->lock);
    const api_key_entry *e = api_keys_find(&a->keys, hash);
    if (e) {
        found = true;
        role = e->role;
        strcpy(key_name, e->name);
        token_bucket *b = &a->buckets[e - a->keys.items];
        rate = b->rate;
        burst = b->burst;
        allowed = role >= needed && (!spend || needed < API_ROLE_WRITE ||
                                     token_bucket_take(b, timefmt_monotonic_ms(), &retry_ms));
    }
    pthread_mutex_unlock(&a->lock);
    sodium_memzero(hash, sizeof hash);

    if (!found)
        return unauthorized(a, resp, "unknown", "the API key is not valid");
    if (role < needed) {
        count_key(a, key_name, "forbidden");
        respond_error(resp, 403, "forbidden", "the key '%s' has the role %s; this route needs %s",
                      key_name, api_role_name(role), api_role_name(needed));
        return -1;
    }
    if (!allowed) {
        count_key(a, key_name, "rate_limited");
        char seconds[32];
        snprintf(seconds, sizeof seconds, "%lld", (long long)((retry_ms + 999) / 1000));
        respond_error(resp, 429, "rate_limited",
                      "the key '%s' may send %.15g write requests a second (bursts of %.15g); "
                      "retry after %s s",
                      key_name, rate, burst, seconds);
        u_map_put(resp->map_header, "Retry-After", seconds);
        return -1;
    }
    if (spend)
        count_key(a, key_name, "allowed");
    return 0;
}

int auth_check(auth *a, api_access access, const struct _u_request *req, struct _u_response *resp,
               char key_name[API_KEY_NAME_MAX + 1])
{
    return check(a, access, req, resp, key_name, true);
}

int auth_admit(auth *a, api_access access, const struct _u_request *req, struct _u_response *resp,
               char key_name[API_KEY_NAME_MAX + 1])
{
    return check(a, access, req, resp, key_name, false);
}
