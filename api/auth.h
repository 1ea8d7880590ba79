/* Who may call which route. Each route has an access level; a request to one
 * that needs a key must carry one (Authorization: Bearer KEY, or X-API-Key:
 * KEY) whose role reaches the level, and on write routes each key has a token
 * bucket of its own. The keys come from the key file (lib/api_keys.h), read
 * again on auth_reload (eie-api's SIGHUP) while requests go on. */
#ifndef EIE_AUTH_H
#define EIE_AUTH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <ulfius.h>

#include "api_keys.h"
#include "err.h"
#include "metrics.h"

/* A route's access level. Zero is read, so a route that says nothing is a
 * read route, closed whenever reads are. */
typedef enum {
    API_ACCESS_READ = 0, /* a key of any role, or none when reads are open */
    API_ACCESS_WRITE,    /* a write or admin key, always */
    API_ACCESS_ADMIN,    /* an admin key, always */
    API_ACCESS_PUBLIC,   /* never a key: health, the API's own description */
} api_access;

typedef struct auth_settings {
    const char *keys_file; /* the key file, or NULL */
    const char *keys_text; /* or the keys themselves (not reloadable), or NULL */
    bool reads_need_key;
    double write_rate;  /* per key and second on write routes (0: no limit), */
    double write_burst; /* unless the key's entry gives its own */
} auth_settings;

typedef struct auth auth;

/* Whether read routes need a key under --read-access mode: "open" (no),
 * "key" (yes) or "auto": yes unless the server listens on loopback
 * (127.0.0.0/8), where no one else can connect. -1 for another mode. */
int auth_reads_need_key(const char *mode, const struct in_addr *listen_address);

/* Loads the keys; settings' strings must outlive the result. With neither a
 * file nor a text there are no keys, and only routes that need none answer. */
auth *auth_open(const auth_settings *settings, metrics *m, eie_err *err);
void auth_free(auth *a);
/* Reads the key file again and swaps the new keys in under the lock, each
 * key's bucket kept; on error the keys in use stay and -1 is returned. */
int auth_reload(auth *a, eie_err *err);
size_t auth_key_count(auth *a);

/* Whether the request may reach a route of this access level: 0, with the
 * name of the key it used in key_name ("" when none was asked for), or -1
 * with the response set: 401 (no key, or not a known one), 403 (a key whose
 * role is too low) or 429 with Retry-After (its bucket is empty). a may be
 * NULL: reads open, no keys. */
int auth_check(auth *a, api_access access, const struct _u_request *req, struct _u_response *resp,
               char key_name[API_KEY_NAME_MAX + 1]);
/* The same but for the bucket, which it leaves alone: for a request whose
 * body is still to come, checked again with auth_check once it is in. */
int auth_admit(auth *a, api_access access, const struct _u_request *req, struct _u_response *resp,
               char key_name[API_KEY_NAME_MAX + 1]);

#endif
