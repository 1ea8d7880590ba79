/* SIGINT and SIGTERM for eie-admin's database commands. Left to their default,
 * they end the program while PostgreSQL carries on with its statement (a
 * rollup, a verify's scan of every store) to the end, or waits on a lock for
 * it, holding what it has locked: a server notices that its client is gone
 * only when it next writes to it. So the statement under way is cancelled
 * (PQcancel is safe in a signal handler, with its buffer on the handler's
 * stack), and the command ends with status 1 and says so. */
#include "interrupt.h"

#include <signal.h>
#include <stddef.h>

static volatile sig_atomic_t interrupted;
static PGcancel *volatile watched;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
    PGcancel *cancel = watched;
    if (cancel) {
        char errbuf[256];
        PQcancel(cancel, errbuf, sizeof errbuf);
    }
}

void admin_interrupt_init(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool admin_interrupt_watch(PGconn *conn)
{
    PGcancel *cancel = conn ? PQgetCancel(conn) : NULL;
    /* The handler must never see a cancel object being freed. */
    sigset_t signals, before;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &signals, &before);
    PGcancel *old = watched;
    watched = cancel;
    sigprocmask(SIG_SETMASK, &before, NULL);
    if (old)
        PQfreeCancel(old);
    return !interrupted;
}

bool admin_interrupted(void)
{
    return interrupted;
}
