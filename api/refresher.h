/* The thread behind each of the API's caches: calls refresh every period_ms
 * until stopped, and says in the log once when refreshing starts failing and
 * once when it recovers (the cache's readers ask the database meanwhile).
 * Between refreshes a cache may also be told of changes as they commit: then
 * wait, instead of sleeping, waits up to ms for such a notice and applies
 * what it names. */
#ifndef EIE_REFRESHER_H
#define EIE_REFRESHER_H

#include "err.h"

typedef struct refresher refresher;

/* Rows a cache applies per hold of its write lock: requests reading it wait
 * for a fraction of a millisecond at most, even when the refresh thread loses
 * its core while it holds the lock (a busy machine). */
#define REFRESH_ROWS_PER_LOCK 2000

/* refresh and wait return 0, or -1 with err set; wait may be NULL. what names
 * the cache in the log. */
refresher *refresher_start(const char *what, long period_ms,
                           int (*refresh)(void *arg, eie_err *err),
                           int (*wait)(void *arg, long ms, eie_err *err), void *arg,
                           eie_err *err);

/* Waits for a refresh under way to end. */
void refresher_stop(refresher *r);

#endif
