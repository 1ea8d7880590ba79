/* The dead-letter topic: every message a consumer cannot store (it does not
 * decode, names an unknown schema, sits on the wrong topic, or fails
 * validation) is republished there with its original key, value and headers
 * and headers of ours saying why and where it came from, so nothing is dropped
 * silently and nothing stops the consumer. Dead letters of a batch are
 * acknowledged by Kafka before the batch's offsets are committed; a batch read
 * again after a crash in between passes over those already on the topic
 * (dead_seen.h), so that each bad record is dead-lettered once per consumer
 * group, as the stores hold each reading once.
 *
 * Any record the broker accepted must fit: a record the dead-letter topic
 * cannot take as it is (larger than the topic's max.message.bytes, which may be
 * set smaller than the source topic's, or made large by its headers) is
 * published truncated instead: our headers, the original's size and SHA-256,
 * and a prefix of its key and value, marked eie.truncated. The limit is asked
 * of the broker, not assumed. Only a dead-letter topic that cannot be reached
 * at all holds the consumer back, and its /readyz says so. */
#ifndef EIE_DEAD_LETTER_H
#define EIE_DEAD_LETTER_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "config.h"
#include "dead_seen.h"
#include "err.h"

typedef enum {
    DEAD_BAD_FRAMING,
    DEAD_UNKNOWN_SCHEMA,
    DEAD_BAD_BODY,
    DEAD_WRONG_TOPIC,
    DEAD_INVALID,
    DEAD_REASON_COUNT
} dead_reason;

/* Header value and metric label of a reason: "bad-framing" and so on. */
const char *dead_reason_name(dead_reason reason);

/* How a dead letter was published: whole, or truncated to fit the topic. */
typedef enum { DEAD_FORM_WHOLE, DEAD_FORM_TRUNCATED, DEAD_FORM_COUNT } dead_form;
const char *dead_form_name(dead_form form);

/* The dead letters of one batch. Zero-initialise; dead_list_free when done. */
typedef struct dead_letter dead_letter;
typedef struct dead_list {
    dead_letter *items;
    size_t n, cap;
    size_t n_acked; /* how many are acknowledged: a retry publishes only the others */
    /* How many failed without telling whether the broker stored them (a
     * timeout): to look for on the topic before a retry (dead_list_unsure). */
    size_t n_unsure;
    int64_t first_sent_ms; /* wall clock of the first publish; 0: none yet */
} dead_list;

/* Keeps a copy of msg. */
void dead_list_add(dead_list *list, const rd_kafka_message_t *msg, dead_reason reason,
                   const char *detail);
/* The sources of the dead letters whose fate is unsure, for dead_seen_scan:
 * at most one per partition, from its smallest such offset; sources must
 * have room for list->n. Returns how many. */
size_t dead_list_unsure(const dead_list *list, dead_seen_source *sources);
/* They were looked for: a retry publishes those not found. */
void dead_list_unsure_checked(dead_list *list);
/* Forgets them all (after the batch's commit, or when it is dropped). */
void dead_list_clear(dead_list *list);
void dead_list_free(dead_list *list);

/* The producer that publishes dead letters; safe to use from one thread at a
 * time, while the counts may be read from any. */
typedef struct dead_letters dead_letters;

dead_letters *dead_letters_open(const char *bootstrap, const config_props *props,
                                const char *topic, const char *group, eie_err *err);
void dead_letters_close(dead_letters *dl);

/* Publishes the list's dead letters not yet acknowledged and waits for their
 * acknowledgements; those `seen` (may be NULL) holds are on the topic already
 * and count as acknowledged. Returns -1 (err set) if any was not acknowledged;
 * call again to retry, after looking for the unsure ones (dead_list_unsure). */
int dead_letters_publish(dead_letters *dl, dead_list *list, const dead_seen *seen, int timeout_ms,
                         eie_err *err);

/* Dead letters published since start, by reason and by form; and those found
 * on the topic already (published before a restart), not published again. */
uint64_t dead_letters_count(const dead_letters *dl, dead_reason reason);
uint64_t dead_letters_already_count(const dead_letters *dl);
uint64_t dead_letters_form_count(const dead_letters *dl, dead_form form);

/* The largest record the dead-letter topic takes, as last asked of the
 * broker (0 until then). */
size_t dead_letters_limit(const dead_letters *dl);

#endif
