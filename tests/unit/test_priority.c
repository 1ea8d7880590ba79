/* Unit tests of lib/priority.c: each case runs in a child process, so the
 * test runner keeps its own priority. A session's leader lowers its session's
 * autogroup as well; another process only itself; threads started afterwards
 * take the nice value; 0 changes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "priority.h"

/* The autogroup's nice value, or -100 without autogroups. */
static int autogroup_nice(void)
{
    FILE *f = fopen("/proc/self/autogroup", "r");
    if (!f)
        return -100;
    int nice = -100;
    if (fscanf(f, "/autogroup-%*d nice %d", &nice) != 1)
        nice = -100;
    fclose(f);
    return nice;
}

static void *thread_nice(void *out)
{
    *(int *)out = getpriority(PRIO_PROCESS, 0);
    return NULL;
}

/* The checks of one case, in the child: 0 when they hold, else which failed. */
static int lowered_as_expected(int nice, int lead_session)
{
    if (lead_session && setsid() < 0)
        return 1;
    int group_before = autogroup_nice(), own_before = getpriority(PRIO_PROCESS, 0);
    eie_err err;
    if (priority_lower(nice, &err) < 0)
        return 2;
    int want = nice ? nice : own_before;
    if (getpriority(PRIO_PROCESS, 0) != want)
        return 3;
    int in_thread = -100;
    pthread_t t;
    if (pthread_create(&t, NULL, thread_nice, &in_thread) != 0 || pthread_join(t, NULL) != 0)
        return 4;
    if (in_thread != want)
        return 5;
    int group_after = autogroup_nice();
    if (group_before == -100) /* no autogroups here: nothing more to see */
        return 0;
    if (group_after != (lead_session && nice ? nice : group_before))
        return 6;
    return 0;
}

static void run_case(int nice, int lead_session)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(lowered_as_expected(nice, lead_session));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_session_leader(void **state)
{
    (void)state;
    run_case(7, 1);
}

static void test_not_leader_keeps_its_session(void **state)
{
    (void)state;
    run_case(5, 0);
}

static void test_zero_changes_nothing(void **state)
{
    (void)state;
    run_case(0, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_leader),
        cmocka_unit_test(test_not_leader_keeps_its_session),
        cmocka_unit_test(test_zero_changes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
