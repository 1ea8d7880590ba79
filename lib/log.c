/* Leveled logging; see log.h. Each line is written with one fwrite (or, for
 * buffered lines, within one write of whole lines) so that lines from several
 * threads do not interleave. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    const char *program;
    log_level level;
} log_state = {"eie", LOG_INFO};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *program)
{
    log_state.program = program;
    const char *env = getenv("EIE_LOG_LEVEL");
    if (env && *env && log_set_level(env) < 0)
        log_warn("ignoring EIE_LOG_LEVEL '%s': expected debug, info, warn or error", env);
}

int log_set_level(const char *name)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            log_state.level = (log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_enabled(log_level level)
{
    return level >= log_state.level;
}

/* "time program level: message\n" into out; the length written. */
__attribute__((format(printf, 4, 0))) static size_t format_line(char *out, size_t size,
                                                                log_level level, const char *fmt,
                                                                va_list ap)
{
    char text[2048];
    vsnprintf(text, sizeof text, fmt, ap);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: %s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, now.tv_nsec / 1000000L, log_state.program, level_names[level], text);
    if (n < 0)
        return 0;
    if ((size_t)n >= size) { /* cut, but still one line */
        out[size - 2] = '\n';
        return size - 1;
    }
    return (size_t)n;
}

void log_msg(log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char line[2200];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_line(line, sizeof line, level, fmt, ap);
    va_end(ap);
    fwrite(line, 1, n, stderr);
}

/* ---- Buffered lines ---- */

#define BUFFER_BYTES 65536

static struct {
    pthread_mutex_t lock;
    pthread_once_t started;
    char data[BUFFER_BYTES];
    size_t len;
} gathered = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_ONCE_INIT, {0}, 0};

/* Under gathered.lock. stderr's own buffer is flushed first, so that a
 * block never overtakes a line log_msg wrote before it. */
static void write_gathered(void)
{
    fflush(stderr);
    size_t done = 0;
    while (done < gathered.len) {
        ssize_t w = write(STDERR_FILENO, gathered.data + done, gathered.len - done);
        if (w <= 0)
            break; /* nowhere to write: the lines are dropped, not kept forever */
        done += (size_t)w;
    }
    gathered.len = 0;
}

void log_flush(void)
{
    pthread_mutex_lock(&gathered.lock);
    write_gathered();
    pthread_mutex_unlock(&gathered.lock);
}

static void *flusher(void *arg)
{
    (void)arg;
    struct timespec pause = {0, LOG_BUFFERED_DELAY_MS * 1000000L};
    for (;;) {
        nanosleep(&pause, NULL);
        log_flush();
    }
    return NULL;
}

static void start_flusher(void)
{
    pthread_t thread;
    /* Signals stay with the threads that wait for them (the API blocks
     * SIGINT and SIGTERM before its threads start, and this one inherits
     * that mask). */
    if (pthread_create(&thread, NULL, flusher, NULL) == 0)
        pthread_detach(thread);
    atexit(log_flush);
}

void log_buffered(log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    pthread_once(&gathered.started, start_flusher);
    char line[2200];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_line(line, sizeof line, level, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&gathered.lock);
    if (gathered.len + n > sizeof gathered.data)
        write_gathered();
    memcpy(gathered.data + gathered.len, line, n);
    gathered.len += n;
    pthread_mutex_unlock(&gathered.lock);
}
