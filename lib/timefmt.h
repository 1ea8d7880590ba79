/* Timestamps: readings carry milliseconds since the Unix epoch (UTC), as Avro's
 * timestamp-millis does; people and JSON see RFC 3339. */
#ifndef EIE_TIMEFMT_H
#define EIE_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Accepts "2026-02-09T13:08:00Z", fractional seconds, and "+hh:mm"/"-hh:mm" offsets
 * ('t', 'z' and a space for 'T' too). Returns -1 on anything else. */
int timefmt_parse_rfc3339(const char *text, int64_t *ms_out);

/* Writes "2026-02-09T13:08:00Z", or "2026-02-09T13:08:00.123Z" when the
 * milliseconds are not zero. buf must hold TIMEFMT_RFC3339_LEN bytes, which
 * is enough for any int64 (years beyond 0..9999 print as printf's %04d). */
#define TIMEFMT_RFC3339_LEN 40
void timefmt_format_rfc3339(int64_t ms, char *buf);

/* Writes PostgreSQL's timestamptz input form "2026-02-09 13:08:00.123+00";
 * buf must hold TIMEFMT_RFC3339_LEN bytes too. */
void timefmt_format_pg(int64_t ms, char *buf);

/* Milliseconds since the epoch, now. */
int64_t timefmt_now_ms(void);
/* Milliseconds of a clock that only goes forward (CLOCK_MONOTONIC), for
 * intervals and deadlines that a change of the wall clock must not move. */
int64_t timefmt_monotonic_ms(void);
/* The wall-clock time ms milliseconds from now, as pthread_cond_timedwait
 * wants its deadline. */
struct timespec timefmt_deadline(long ms);

/* The UTC day (days since the epoch) a timestamp falls in. */
int64_t timefmt_day(int64_t ms);

#endif
