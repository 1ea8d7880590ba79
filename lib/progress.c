/* Progress bar or periodic log lines; see progress.h. */
#include "progress.h"

#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "timefmt.h"

#define TTY_REDRAW_MS 200
#define LOG_EVERY_MS 10000
#define BAR_WIDTH 30

void progress_start(progress *p, const char *label, uint64_t total)
{
    *p = (progress){label, total, 0, timefmt_now_ms(), 0, isatty(STDERR_FILENO)};
    p->last_draw_ms = p->start_ms;
}

static void format_eta(double seconds, char *buf, size_t len)
{
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, len, "%ld:%02ld", s / 60, s % 60);
}

static void draw(progress *p, int64_t now, int final)
{
    double secs = (double)(now - p->start_ms) / 1000.0;
    double rate = secs > 0 ? (double)p->done / secs : 0;
    char eta[32] = "?";
    uint64_t left = p->total > p->done ? p->total - p->done : 0;
    if (p->total && rate > 0)
        format_eta((double)left / rate, eta, sizeof eta);
    if (p->tty) {
        if (p->total) {
            int filled = (int)(BAR_WIDTH * (p->done > p->total ? 1.0 : (double)p->done / (double)p->total));
            char bar[BAR_WIDTH + 1];
            for (int i = 0; i < BAR_WIDTH; i++)
                bar[i] = i < filled ? '#' : '.';
            bar[BAR_WIDTH] = '\0';
            fprintf(stderr, "\r%s [%s] %3.0f%% %llu/%llu, %llu left, %.0f/s ETA %s ", p->label,
                    bar, 100.0 * (double)p->done / (double)p->total, (unsigned long long)p->done,
                    (unsigned long long)p->total, (unsigned long long)left, rate, eta);
        } else {
            fprintf(stderr, "\r%s %llu %.0f/s ", p->label, (unsigned long long)p->done, rate);
        }
        if (final)
            fputc('\n', stderr);
        fflush(stderr);
    } else if (p->total) {
        log_info("%s: %llu/%llu (%.0f%%), %llu left, %.0f/s, ETA %s", p->label,
                 (unsigned long long)p->done, (unsigned long long)p->total,
                 100.0 * (double)p->done / (double)p->total, (unsigned long long)left, rate, eta);
    } else {
        log_info("%s: %llu, %.0f/s", p->label, (unsigned long long)p->done, rate);
    }
}

void progress_update(progress *p, uint64_t done)
{
    p->done = done;
    int64_t now = timefmt_now_ms();
    if (now - p->last_draw_ms >= (p->tty ? TTY_REDRAW_MS : LOG_EVERY_MS)) {
        p->last_draw_ms = now;
        draw(p, now, 0);
    }
}

void progress_finish(progress *p)
{
    draw(p, timefmt_now_ms(), 1);
}
