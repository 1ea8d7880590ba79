/* CPU priority below the API's, for programs that share a machine with it.
 *
 * An operator who looks at the reports while the sinks catch up wants the
 * answers first and the backlog second. Linux schedules every session as one
 * group (autogroup) with a weight of its own, so a process's nice value alone
 * only orders it among its own session's processes: a consumer started by
 * setsid (deploy/lib/processes.sh), a service manager or a container is its
 * session's leader, and it lowers its session's weight as well. (Under a
 * cgroup's CPU controller, systemd's CPUWeight= or compose's cpu_shares are
 * the equivalent; autogroups do not apply there.) */
#ifndef EIE_PRIORITY_H
#define EIE_PRIORITY_H

#include "err.h"

#define PRIORITY_OPTION_NICE(value)                                                             \
    {"nice", 0, "EIE_NICE", CONFIG_INT, value, "0", 0, 19,                                     \
     "CPU priority below others on the machine (nice value, 0 to 19); the process's whole "    \
     "session when it leads one, so that a busy sink yields to the API"}

/* Sets the calling thread's nice value, and its session's autogroup's when it
 * leads the session and the kernel has autogroups. Call before any thread is
 * started: threads take their creator's nice value. 0 changes nothing. */
int priority_lower(int nice, eie_err *err);

#endif
