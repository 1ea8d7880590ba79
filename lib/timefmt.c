/* RFC 3339 and PostgreSQL timestamp text; see timefmt.h. */
#include "timefmt.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MS_PER_DAY 86400000LL

/* Days from 1970-01-01 to the given civil date (proleptic Gregorian); avoids
 * timegm's dependence on the time zone database and its int range. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

int timefmt_parse_rfc3339(const char *text, int64_t *ms_out)
{
    const char *p = text;
    int y, mo, d, h, mi, s, ms = 0;
    if (read_digits(&p, 4, &y) || *p++ != '-' || read_digits(&p, 2, &mo) || *p++ != '-' ||
        read_digits(&p, 2, &d))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (read_digits(&p, 2, &h) || *p++ != ':' || read_digits(&p, 2, &mi) || *p++ != ':' ||
        read_digits(&p, 2, &s))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60)
        return -1;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (read_digits(&p, 2, &oh) || *p++ != ':' || read_digits(&p, 2, &om) || oh > 23 ||
            om > 59)
            return -1;
        offset_min = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    if (s == 60) /* a leap second folds into the next second, as POSIX time does */
        s = 59, ms = 999;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset_min * 60;
    *ms_out = secs * 1000 + ms;
    return 0;
}

static void split(int64_t ms, int *y, int *mo, int *d, int *h, int *mi, int *s, int *frac)
{
    /* The remainder, not ms - day * MS_PER_DAY, which overflows near INT64_MIN. */
    int64_t in_day = ms % MS_PER_DAY;
    if (in_day < 0)
        in_day += MS_PER_DAY;
    civil_from_days(timefmt_day(ms), y, mo, d);
    *h = (int)(in_day / 3600000);
    *mi = (int)(in_day / 60000 % 60);
    *s = (int)(in_day / 1000 % 60);
    *frac = (int)(in_day % 1000);
}

/* Digits by hand: these run for every timestamp of every batch and report,
 * where snprintf showed up in profiles. */
static char *put_digits(char *p, int v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* "YYYY-MM-DD?hh:mm:ss" with sep between date and time; returns the end. */
static char *put_datetime(char *p, int64_t ms, char sep, int *frac)
{
    int y, mo, d, h, mi, s;
    split(ms, &y, &mo, &d, &h, &mi, &s, frac);
    /* Beyond RFC 3339's years: as printf would. The buffer leaves room for
     * the longest year an int64 reaches plus the longest ending (".123+00"). */
    if (y < 0 || y > 9999)
        return p + snprintf(p, TIMEFMT_RFC3339_LEN - 8, "%04d-%02d-%02d%c%02d:%02d:%02d", y, mo, d,
                            sep, h, mi, s);
    p = put_digits(p, y, 4);
    *p++ = '-';
    p = put_digits(p, mo, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = sep;
    p = put_digits(p, h, 2);
    *p++ = ':';
    p = put_digits(p, mi, 2);
    *p++ = ':';
    return put_digits(p, s, 2);
}

void timefmt_format_rfc3339(int64_t ms, char *buf)
{
    int frac;
    char *p = put_datetime(buf, ms, 'T', &frac);
    if (frac) {
        *p++ = '.';
        p = put_digits(p, frac, 3);
    }
    *p++ = 'Z';
    *p = '\0';
}

void timefmt_format_pg(int64_t ms, char *buf)
{
    int frac;
    char *p = put_datetime(buf, ms, ' ', &frac);
    *p++ = '.';
    p = put_digits(p, frac, 3);
    memcpy(p, "+00", 4);
}

int64_t timefmt_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int64_t timefmt_monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

struct timespec timefmt_deadline(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

int64_t timefmt_day(int64_t ms)
{
    /* Rounded down, without negating ms (INT64_MIN has no negative). */
    return ms / MS_PER_DAY - (ms % MS_PER_DAY < 0);
}
