/* The hot store's commit notices; see hot_notice.h. */
#include "hot_notice.h"

#include <stdlib.h>
#include <string.h>

/* An id quoted, each character possibly escaped, and a comma. */
#define QUOTED_ID_MAX (2 * READING_ID_MAX + 3)
/* "} <n>" after a list's last id. */
#define LIST_END_MAX 24

static char kind_letter(reading_kind kind)
{
    return kind == READING_VEHICLE ? 'v' : 'm';
}

/* ---- the sink's side ---- */

static void close_list(hot_notice_writer *w)
{
    if (w->open)
        strbuf_printf(&w->lists[w->n_lists - 1], "} %zu", w->n_ids);
    w->open = false;
}

void hot_notice_writer_reset(hot_notice_writer *w)
{
    w->n_lists = 0;
    w->n_ids = 0;
    w->open = false;
    w->too_many = false;
}

void hot_notice_name(hot_notice_writer *w, reading_kind kind, const char *id)
{
    if (w->too_many)
        return;
    char k = kind_letter(kind);
    strbuf *l = w->open ? &w->lists[w->n_lists - 1] : NULL;
    if (!l || l->data[1] != k || l->len + QUOTED_ID_MAX + LIST_END_MAX > HOT_NOTICE_LIST_MAX) {
        close_list(w);
        if (w->n_lists == HOT_NOTICE_MAX_LISTS) {
            w->too_many = true;
            return;
        }
        l = &w->lists[w->n_lists++];
        strbuf_reset(l);
        strbuf_printf(l, " %c {", k);
        w->n_ids = 0;
        w->open = true;
    }
    if (w->n_ids++)
        strbuf_putc(l, ',');
    strbuf_putc(l, '"');
    for (const char *p = id; *p; p++) {
        if (*p == '"' || *p == '\\')
            strbuf_putc(l, '\\');
        strbuf_putc(l, *p);
    }
    strbuf_putc(l, '"');
}

int hot_notice_payloads(hot_notice_writer *w, const char *out[HOT_NOTICE_MAX_LISTS])
{
    close_list(w);
    if (w->too_many) {
        out[0] = "";
        return 1;
    }
    if (w->n_lists == 0) { /* assignments only: no state row written */
        strbuf_reset(&w->lists[0]);
        strbuf_puts(&w->lists[0], " v {} 0");
        w->n_lists = 1;
    }
    for (int i = 0; i < w->n_lists; i++)
        out[i] = w->lists[i].data;
    return w->n_lists;
}

void hot_notice_writer_free(hot_notice_writer *w)
{
    for (int i = 0; i < HOT_NOTICE_MAX_LISTS; i++)
        strbuf_free(&w->lists[i]);
    hot_notice_writer_reset(w);
}

/* ---- the cache's side ---- */

void hot_notice_round_reset(hot_notice_round *r)
{
    r->any = false;
    r->earliest_us = 0;
    r->by_stamp = false;
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        strbuf_reset(&r->ids[k]);
        r->n_ids[k] = 0;
    }
}

/* The named list of a notice, after its stamp: " <k> {<ids>} <n>". False
 * when it is not one. */
static bool take_list(hot_notice_round *r, const char *p)
{
    if (p[0] != ' ' || (p[1] != 'v' && p[1] != 'm') || p[2] != ' ' || p[3] != '{')
        return false;
    reading_kind kind = p[1] == 'v' ? READING_VEHICLE : READING_METER;
    const char *first = p + 4;
    /* The count has no space in it; an id may. */
    const char *count = strrchr(first, ' ');
    if (!count || count == first || count[-1] != '}')
        return false;
    char *end;
    unsigned long long n = strtoull(count + 1, &end, 10);
    if (end == count + 1 || *end != '\0')
        return false;
    if (n == 0)
        return true;
    if (r->n_ids[kind] + n > HOT_NOTICE_ROUND_MAX_IDS)
        return false;
    if (r->n_ids[kind])
        strbuf_putc(&r->ids[kind], ',');
    strbuf_append(&r->ids[kind], first, (size_t)(count - 1 - first));
    r->n_ids[kind] += n;
    return true;
}

void hot_notice_take(hot_notice_round *r, const char *payload)
{
    char *end;
    long long us = strtoll(payload, &end, 10);
    if (end == payload || us <= 0)
        return; /* not a commit's */
    if (!r->any || us < r->earliest_us)
        r->earliest_us = us;
    r->any = true;
    if (!r->by_stamp && !take_list(r, end))
        r->by_stamp = true;
}

void hot_notice_ids(const hot_notice_round *r, reading_kind kind, strbuf *out)
{
    strbuf_reset(out);
    strbuf_putc(out, '{');
    if (r->n_ids[kind])
        strbuf_append(out, r->ids[kind].data, r->ids[kind].len);
    strbuf_putc(out, '}');
}

void hot_notice_round_free(hot_notice_round *r)
{
    for (int k = 0; k < READING_KIND_COUNT; k++)
        strbuf_free(&r->ids[k]);
}
