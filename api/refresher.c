/* Refresh threads; see refresher.h. */
#include "refresher.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "timefmt.h"

#define NAP_MS 50 /* how soon a stop is noticed between refreshes */

struct refresher {
    const char *what;
    long period_ms;
    int (*refresh)(void *arg, eie_err *err);
    int (*wait)(void *arg, long ms, eie_err *err);
    void *arg;
    atomic_bool stop;
    pthread_t thread;
};

/* Logs the first failure and the recovery; returns whether it failed. */
static bool note(refresher *r, bool failing, int rc, const eie_err *err)
{
    if (rc < 0) {
        if (!failing && !r->stop)
            log_warn("%s: %s (requests ask the database until this recovers)", r->what,
                     err->msg);
        return true;
    }
    if (failing)
        log_info("%s refreshed again", r->what);
    return false;
}

static void *refresher_main(void *arg)
{
    refresher *r = arg;
    bool failing = false;
    while (!r->stop) {
        eie_err err;
        failing = note(r, failing, r->refresh(r->arg, &err), &err);
        int64_t due = timefmt_monotonic_ms() + r->period_ms;
        for (int64_t left = r->period_ms; left > 0 && !r->stop; left = due - timefmt_monotonic_ms()) {
            long ms = left < NAP_MS ? (long)left : NAP_MS;
            if (r->wait && !failing) {
                failing = note(r, failing, r->wait(r->arg, ms, &err), &err);
            } else {
                struct timespec nap = {0, ms * 1000000L};
                nanosleep(&nap, NULL);
            }
        }
    }
    return NULL;
}

refresher *refresher_start(const char *what, long period_ms,
                           int (*refresh)(void *arg, eie_err *err),
                           int (*wait)(void *arg, long ms, eie_err *err), void *arg,
                           eie_err *err)
{
    refresher *r = calloc(1, sizeof *r);
    if (!r) {
        eie_err_set(err, "out of memory");
        return NULL;
    }
    r->what = what;
    r->period_ms = period_ms;
    r->refresh = refresh;
    r->wait = wait;
    r->arg = arg;
    if (pthread_create(&r->thread, NULL, refresher_main, r) != 0) {
        eie_err_set(err, "cannot start the %s's thread", what);
        free(r);
        return NULL;
    }
    return r;
}

void refresher_stop(refresher *r)
{
    if (!r)
        return;
    r->stop = true;
    pthread_join(r->thread, NULL);
    free(r);
}
