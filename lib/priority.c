/* CPU priority below the API's; see priority.h. */
#include "priority.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"

int priority_lower(int nice, eie_err *err)
{
    if (nice == 0)
        return 0;
    if (setpriority(PRIO_PROCESS, 0, nice) < 0) {
        eie_err_set(err, "setting nice %d: %s", nice, strerror(errno));
        return -1;
    }
    /* Only the session's leader: another process's would lower the shell or
     * service that started it along with it. */
    if (getsid(0) != getpid()) {
        log_info("nice %d (not its session's leader: its session's CPU weight is unchanged)", nice);
        return 0;
    }
    FILE *f = fopen("/proc/self/autogroup", "w");
    if (!f) {
        /* No autogroups (a kernel without them, or switched off): nice does it all. */
        log_info("nice %d", nice);
        return 0;
    }
    int ok = fprintf(f, "%d", nice) > 0;
    if (fclose(f) != 0 || !ok) {
        eie_err_set(err, "setting nice %d for the session (/proc/self/autogroup): %s", nice,
                    strerror(errno));
        return -1;
    }
    log_info("nice %d, for its session as well", nice);
    return 0;
}
