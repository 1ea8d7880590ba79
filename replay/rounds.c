/* Sink jobs run side by side in rounds; see rounds.h. */
#include "rounds.h"

#include <stdio.h>
#include <time.h>

#include "log.h"
#include "progress.h"
#include "timefmt.h"

volatile sig_atomic_t replay_stop_requested;

static void *job_main(void *arg)
{
    replay_job *job = arg;
    job->rc = sink_run(&job->cfg, &job->store, 1, &replay_stop_requested, &job->err);
    job->ended = 1;
    return NULL;
}

static uint64_t stored_by(const replay_job *jobs, size_t n)
{
    uint64_t stored = 0;
    for (size_t i = 0; i < n; i++)
        stored += jobs[i].replay.stored;
    return stored;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int replay_run_round(replay_job *jobs, size_t n, const char *label, replay_totals *totals,
                     eie_err *err)
{
    for (size_t i = 0; i < n; i++) {
        jobs[i].replay.total = jobs[i].replay.read = jobs[i].replay.stored = 0;
        jobs[i].replay.finished = false;
        jobs[i].ended = 0;
        if (pthread_create(&jobs[i].thread, NULL, job_main, &jobs[i]) != 0) {
            eie_err_set(err, "cannot start a replay thread");
            replay_stop_requested = 1;
            for (size_t j = 0; j < i; j++)
                pthread_join(jobs[j].thread, NULL);
            return -1;
        }
    }
    progress bar;
    progress_start(&bar, label, 0);
    for (;;) {
        uint64_t total = 0, done = 0;
        size_t ended = 0;
        for (size_t i = 0; i < n; i++) {
            total += jobs[i].replay.total;
            done += jobs[i].replay.read;
            ended += jobs[i].ended != 0;
        }
        bar.total = total;
        progress_update(&bar, done);
        if (ended == n)
            break;
        sleep_ms(100);
    }
    progress_finish(&bar);
    log_info("%s: %llu rows stored in %.1f s", label, (unsigned long long)stored_by(jobs, n),
             (double)(timefmt_now_ms() - bar.start_ms) / 1000.0);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        pthread_join(jobs[i].thread, NULL);
        if (jobs[i].rc < 0 && rc == 0) {
            *err = jobs[i].err;
            rc = -1;
        } else if (rc == 0 && !jobs[i].replay.finished) {
            rc = 1;
        }
    }
    totals->last_read = 0;
    for (size_t i = 0; i < n; i++)
        if (jobs[i].counts_records)
            totals->last_read += jobs[i].replay.read;
    totals->records += totals->last_read;
    totals->stored += stored_by(jobs, n);
    return rc;
}

void replay_print_summary(const char *what, const replay_totals *totals, int64_t start_ms)
{
    double secs = (double)(timefmt_now_ms() - start_ms) / 1000.0;
    printf("%s: records=%llu rows=%llu seconds=%.1f records_per_s=%.0f\n", what,
           (unsigned long long)totals->records, (unsigned long long)totals->stored, secs,
           secs > 0 ? (double)totals->records / secs : 0.0);
}

void replay_log_interrupted(void)
{
    log_warn("interrupted: the live stores are untouched; run eie-replay again to go on "
             "(a rebuild resumes where it stopped; --restart starts it over)");
}
