/* The dead-letter topic: every message a consumer cannot store (it does not
 * decode, names an unknown schema, sits on the wrong topic, or fails
 * validation) is republished there with its original key and value and headers
 * saying why and where it came from, so nothing is dropped silently and nothing
 * stops the consumer. Dead letters of a batch are acknowledged by Kafka before
 * the batch's offsets are committed; after a crash they may be published again
 * (at least once), while the stores stay exactly-once. */
#ifndef EIE_DEAD_LETTER_H
#define EIE_DEAD_LETTER_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "config.h"
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

typedef struct dead_letters dead_letters;

dead_letters *dead_letters_open(const char *bootstrap, const config_props *props,
                                const char *topic, const char *group, eie_err *err);
void dead_letters_close(dead_letters *dl);

/* Keeps a copy of msg for the batch being collected. */
void dead_letters_add(dead_letters *dl, const rd_kafka_message_t *msg, dead_reason reason,
                      const char *detail);

/* Publishes the batch's dead letters not yet acknowledged and waits for their
 * acknowledgements. Returns -1 (err set) if any was not acknowledged; call
 * again to retry (after a timeout, a retried record may appear twice). */
int dead_letters_publish(dead_letters *dl, int timeout_ms, eie_err *err);

/* Forgets the batch's dead letters (after its commit, or when it is dropped). */
void dead_letters_clear(dead_letters *dl);

/* Dead letters published since start, by reason. */
uint64_t dead_letters_count(const dead_letters *dl, dead_reason reason);

#endif
