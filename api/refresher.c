/* Refresh threads; see refresher.h. */
#include "refresher.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

#define NAP_MS 50 /* how soon a stop is noticed between refreshes */

struct refresher {
    const char *what;
    long period_ms;
    int (*refresh)(void *arg, eie_err *err);
    void *arg;
    atomic_bool stop;
    pthread_t thread;
};

static void *refresher_main(void *arg)
{
    refresher *r = arg;
    bool failing = false;
    while (!r->stop) {
        eie_err err;
        if (r->refresh(r->arg, &err) < 0) {
            if (!failing && !r->stop)
                log_warn("%s: %s (requests ask the database until this recovers)", r->what,
                         err.msg);
            failing = true;
        } else if (failing) {
            log_info("%s refreshed again", r->what);
            failing = false;
        }
        for (long slept = 0; slept < r->period_ms && !r->stop; slept += NAP_MS) {
            struct timespec nap = {0, NAP_MS * 1000000L};
            nanosleep(&nap, NULL);
        }
    }
    return NULL;
}

refresher *refresher_start(const char *what, long period_ms,
                           int (*refresh)(void *arg, eie_err *err), void *arg, eie_err *err)
{
    refresher *r = calloc(1, sizeof *r);
    if (!r) {
        eie_err_set(err, "out of memory");
        return NULL;
    }
    r->what = what;
    r->period_ms = period_ms;
    r->refresh = refresh;
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
