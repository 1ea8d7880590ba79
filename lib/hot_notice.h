/* The hot store's commit notices (PG_HOT_STATE_CHANNEL): what the hot sink
 * says of each commit, and what the API's state cache makes of a round of
 * them.
 *
 * Every notice starts with the commit's stamp, microseconds since 1970: its
 * transaction's now(), which every state row it wrote carries. A commit says
 * either
 *   "<stamp>"                   read my rows by stamp (the tables are scanned), or
 *   "<stamp> <k> {<ids>} <n>"   one or more of these: I wrote the state rows of
 *                               these n devices (k: v vehicles, m meters; the
 *                               ids an array literal of PostgreSQL's, each
 *                               quoted), and no others.
 * Naming the rows lets the cache read them by key. Under a steady load a
 * commit holds a few hundred devices of tens of thousands, and a scan of both
 * tables per commit cost PostgreSQL a third of a core at 50,000 readings/s.
 * A commit of more devices than a few notices hold gives its stamp only:
 * reading by key then costs more than the scan. */
#ifndef EIE_HOT_NOTICE_H
#define EIE_HOT_NOTICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reading.h"
#include "strbuf.h"

/* PostgreSQL refuses payloads of 8000 bytes or more; the stamp and the kind
 * take the rest. */
#define HOT_NOTICE_LIST_MAX 7900
#define HOT_NOTICE_MAX_LISTS 8

/* ---- the sink's side ---- */

typedef struct hot_notice_writer {
    strbuf lists[HOT_NOTICE_MAX_LISTS]; /* "<k> {ids} <n>", after the stamp */
    size_t n_ids;                       /* in the last list */
    int n_lists;
    bool open; /* the last list takes more ids */
    bool too_many; /* named more than the lists hold: the stamp only */
} hot_notice_writer;

void hot_notice_writer_reset(hot_notice_writer *w);
/* Names a device whose state row the commit writes (a meter or a vehicle). */
void hot_notice_name(hot_notice_writer *w, reading_kind kind, const char *id);
/* What follows the stamp in each notice of the commit; returns how many (at
 * least one), each NUL-terminated. "" (one) means the stamp alone. */
int hot_notice_payloads(hot_notice_writer *w, const char *out[HOT_NOTICE_MAX_LISTS]);
void hot_notice_writer_free(hot_notice_writer *w);

/* ---- the cache's side ---- */

/* Past this many named devices a round is read by stamp. */
#define HOT_NOTICE_ROUND_MAX_IDS 100000

typedef struct hot_notice_round {
    bool any;
    int64_t earliest_us; /* the earliest stamp among the notices */
    /* Some commit did not name its rows (or said something this code does not
     * know): read both tables by stamp from earliest_us. */
    bool by_stamp;
    strbuf ids[READING_KIND_COUNT]; /* the named ids: an array literal's contents */
    size_t n_ids[READING_KIND_COUNT];
} hot_notice_round;

void hot_notice_round_reset(hot_notice_round *r);
/* Takes one notice's payload into the round. */
void hot_notice_take(hot_notice_round *r, const char *payload);
/* The round's named ids of a kind as an array literal ("{...}"), into out. */
void hot_notice_ids(const hot_notice_round *r, reading_kind kind, strbuf *out);
void hot_notice_round_free(hot_notice_round *r);

#endif
