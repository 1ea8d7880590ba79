/* Leveled logs on stderr, one line each: time, program, level, message.
 * The level comes from EIE_LOG_LEVEL (debug, info, warn, error; default info). */
#ifndef EIE_LOG_H
#define EIE_LOG_H

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_init(const char *program);
/* Returns -1 when name is not a level. */
int log_set_level(const char *name);
int log_enabled(log_level level);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void log_msg(log_level level, const char *fmt, ...);

/* The same line, gathered with others and written in blocks, at most
 * LOG_BUFFERED_DELAY_MS later: for lines as frequent as requests (the API's
 * access log), where a write(2) per line costs more than the request's own
 * work. log_flush writes what is gathered (also called at exit). */
#define LOG_BUFFERED_DELAY_MS 200
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void log_buffered(log_level level, const char *fmt, ...);
void log_flush(void);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
