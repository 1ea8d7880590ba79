/* The hot store's commit notices; see hot_notice.h. */
#include "hot_notice.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest row: kind, an id of escaped characters, a time and three
 * numbers, with their separators. */
#define ROW_MAX (4 + 2 * READING_ID_MAX + 24 + 3 * 28)

/* ---- the sink's side ---- */

/* The shortest of two forms that reads back as the same double. */
static void put_number(strbuf *sb, double v)
{
    char buf[32];
    snprintf(buf, sizeof buf, ",%.15g", v);
    if (strtod(buf + 1, NULL) != v)
        snprintf(buf, sizeof buf, ",%.17g", v);
    strbuf_puts(sb, buf);
}

void hot_notice_writer_reset(hot_notice_writer *w)
{
    w->n_notices = 0;
    w->too_many = false;
    w->assignments = false;
}

void hot_notice_assignments(hot_notice_writer *w)
{
    w->assignments = true;
}

void hot_notice_add(hot_notice_writer *w, const reading *r)
{
    if (w->too_many)
        return;
    strbuf *n = w->n_notices ? &w->notices[w->n_notices - 1] : NULL;
    if (!n || n->len + ROW_MAX > HOT_NOTICE_ROWS_MAX) {
        if (w->n_notices == HOT_NOTICE_MAX_NOTICES) {
            w->too_many = true;
            return;
        }
        n = &w->notices[w->n_notices++];
        strbuf_reset(n);
        strbuf_putc(n, ' ');
    } else {
        strbuf_putc(n, ';');
    }
    strbuf_putc(n, r->kind == READING_VEHICLE ? 'v' : 'm');
    strbuf_putc(n, ',');
    for (const char *p = reading_key(r); *p; p++) {
        if (*p == '\\' || *p == ',' || *p == ';')
            strbuf_putc(n, '\\');
        strbuf_putc(n, *p);
    }
    strbuf_printf(n, ",%lld", (long long)reading_time_ms(r));
    if (r->kind == READING_VEHICLE) {
        put_number(n, r->u.vehicle.soc);
        put_number(n, r->u.vehicle.kwh_delivered_dc);
        put_number(n, r->u.vehicle.battery_temp);
    } else {
        put_number(n, r->u.meter.kwh_consumed_ac);
        put_number(n, r->u.meter.voltage);
    }
}

int hot_notice_payloads(hot_notice_writer *w, const char *out[HOT_NOTICE_MAX_NOTICES])
{
    if (w->too_many) {
        out[0] = "";
        return 1;
    }
    if (w->n_notices == 0) { /* assignments only, if anything: no state row offered */
        out[0] = w->assignments ? " a" : " -";
        return 1;
    }
    if (w->assignments) /* ROW_MAX left room for it */
        strbuf_puts(&w->notices[w->n_notices - 1], ";a");
    for (int i = 0; i < w->n_notices; i++)
        out[i] = w->notices[i].data;
    return w->n_notices;
}

void hot_notice_writer_free(hot_notice_writer *w)
{
    for (int i = 0; i < HOT_NOTICE_MAX_NOTICES; i++)
        strbuf_free(&w->notices[i]);
    hot_notice_writer_reset(w);
}

/* ---- the cache's side ---- */

void hot_notice_round_reset(hot_notice_round *r)
{
    *r = (hot_notice_round){0};
}

/* ",<number>" at *p, past which *p moves. */
static bool take_number(const char **p, double *v)
{
    if (**p != ',')
        return false;
    char *end;
    *v = strtod(*p + 1, &end);
    if (end == *p + 1)
        return false;
    *p = end;
    return true;
}

/* The rows of a notice, each reading to row(); false at the first that is
 * not one. */
static bool take_rows(hot_notice_round *r, const char *p,
                      void (*row)(void *arg, const reading *r), void *arg)
{
    if (strcmp(p, "-") == 0)
        return true;
    for (;;) {
        if (p[0] == 'a' && (p[1] == '\0' || p[1] == ';')) {
            r->assignments = true;
            if (*++p == '\0')
                return true;
            p++;
            continue;
        }
        reading rd = {.kind = *p == 'v' ? READING_VEHICLE : READING_METER};
        if ((*p != 'v' && *p != 'm') || p[1] != ',')
            return false;
        p += 2;
        char *id = rd.kind == READING_VEHICLE ? rd.u.vehicle.vehicle_id : rd.u.meter.meter_id;
        size_t len = 0;
        for (; *p && *p != ','; p++) {
            if (*p == '\\' && !*++p)
                return false;
            if (len == READING_ID_MAX)
                return false;
            id[len++] = *p;
        }
        if (len == 0 || *p != ',')
            return false;
        char *end;
        long long ts = strtoll(p + 1, &end, 10);
        if (end == p + 1)
            return false;
        p = end;
        if (rd.kind == READING_VEHICLE) {
            rd.u.vehicle.ts_ms = ts;
            if (!take_number(&p, &rd.u.vehicle.soc) ||
                !take_number(&p, &rd.u.vehicle.kwh_delivered_dc) ||
                !take_number(&p, &rd.u.vehicle.battery_temp))
                return false;
        } else {
            rd.u.meter.ts_ms = ts;
            if (!take_number(&p, &rd.u.meter.kwh_consumed_ac) ||
                !take_number(&p, &rd.u.meter.voltage))
                return false;
        }
        if (*p != '\0' && *p != ';')
            return false;
        row(arg, &rd);
        r->rows++;
        if (*p++ == '\0')
            return true;
    }
}

void hot_notice_take(hot_notice_round *r, const char *payload,
                     void (*row)(void *arg, const reading *r), void *arg)
{
    char *end;
    long long us = strtoll(payload, &end, 10);
    if (end == payload || us <= 0)
        return; /* not a commit's */
    if (!r->any || us < r->earliest_us)
        r->earliest_us = us;
    r->any = true;
    /* Once the round reads by stamp, that read covers the rest. */
    if (!r->by_stamp && (*end != ' ' || !take_rows(r, end + 1, row, arg)))
        r->by_stamp = true;
}
