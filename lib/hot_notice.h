/* The hot store's commit notices (PG_HOT_STATE_CHANNEL): what the hot sink
 * says of each commit, and how the API's state cache reads it.
 *
 * Every notice starts with the commit's stamp, microseconds since 1970: its
 * transaction's now(), which every state row it wrote carries. A commit says
 * either
 *   "<stamp>"          read my rows by stamp (the state tables are scanned), or
 *   "<stamp> <rows>"   one or more of these: here are the readings I offered
 *                      the state tables, and no others ("-": none);
 * rows are "<k>,<id>,<time ms>,<values>" joined by ';' (k: v for a vehicle,
 * with its SoC, kWh DC and battery temperature; m for a meter, with its kWh
 * AC and voltage), the id's '\', ',' and ';' escaped by a '\', each number
 * exact; a row "a" says the commit stored assignments too, which the cache
 * then reads by stamp (an index). The store keeps the newer of a row and a reading offered, the row
 * when they are of the same time; a cache that has applied the commits before
 * in the same way holds what the store holds without reading it. At 50,000
 * readings/s, reading the rows back cost PostgreSQL a quarter of a core.
 * A commit of more rows than a few dozen notices hold gives its stamp only:
 * a scan then costs less than the notices. */
#ifndef EIE_HOT_NOTICE_H
#define EIE_HOT_NOTICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reading.h"
#include "strbuf.h"

/* PostgreSQL refuses payloads of 8000 bytes or more; the stamp takes 17. */
#define HOT_NOTICE_ROWS_MAX 7900
#define HOT_NOTICE_MAX_NOTICES 64

/* ---- the sink's side ---- */

typedef struct hot_notice_writer {
    strbuf notices[HOT_NOTICE_MAX_NOTICES]; /* what follows the stamp in each */
    int n_notices;
    bool too_many;    /* more rows than the notices hold: the stamp only */
    bool assignments; /* the commit stores assignments too */
} hot_notice_writer;

void hot_notice_writer_reset(hot_notice_writer *w);
/* A reading the commit offers a state table (a meter's or a vehicle's). */
void hot_notice_add(hot_notice_writer *w, const reading *r);
/* The commit stores assignments too. */
void hot_notice_assignments(hot_notice_writer *w);
/* What follows the stamp in each notice of the commit; returns how many (at
 * least one), each NUL-terminated; "" (one) means the stamp alone. */
int hot_notice_payloads(hot_notice_writer *w, const char *out[HOT_NOTICE_MAX_NOTICES]);
void hot_notice_writer_free(hot_notice_writer *w);

/* ---- the cache's side ---- */

typedef struct hot_notice_round {
    bool any;
    int64_t earliest_us; /* the earliest stamp among the notices */
    /* Some commit gave its stamp only (or said something this code does not
     * know): read the state tables by stamp from earliest_us. */
    bool by_stamp;
    bool assignments; /* some commit stored assignments */
    uint64_t rows;    /* readings taken from the notices */
} hot_notice_round;

void hot_notice_round_reset(hot_notice_round *r);
/* Takes one notice's payload into the round, each reading in it to row(). */
void hot_notice_take(hot_notice_round *r, const char *payload,
                     void (*row)(void *arg, const reading *r), void *arg);

#endif
