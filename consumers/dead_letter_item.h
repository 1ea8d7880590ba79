/* One dead letter as kept until it is acknowledged: what dead_list.c (a
 * batch's list) and dead_letter.c (publishing) share; not for use elsewhere. */
#ifndef EIE_DEAD_LETTER_ITEM_H
#define EIE_DEAD_LETTER_ITEM_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

#include "dead_letter.h"

/* A header's framing in a record, beyond its name and value. */
#define HEADER_OVERHEAD_BYTES 12

struct dead_letter {
    dead_reason reason;
    char *detail, *topic;
    int32_t partition;
    int64_t offset;
    void *key, *value; /* NULL: the original's was null */
    size_t key_len, value_len;
    rd_kafka_headers_t *headers; /* the original's; NULL: none */
    size_t headers_bytes, n_headers;
    bool acked, truncate;
    bool sent, in_flight; /* in the current publish */
    bool unsure;          /* failed, perhaps stored all the same */
    rd_kafka_resp_err_t delivery_err;
};

#endif
