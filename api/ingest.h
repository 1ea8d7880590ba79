/* The Kafka side of the HTTP ingest routes: one idempotent producer shared by
 * the request threads, and a way for a request to wait until Kafka has
 * acknowledged (or refused) each of its records. */
#ifndef EIE_INGEST_H
#define EIE_INGEST_H

#include <stddef.h>

#include "config.h"
#include "err.h"
#include "reading.h"

typedef struct ingest ingest;

/* timeout_ms bounds how long a record may wait for its acknowledgement
 * (librdkafka's message.timeout.ms), and so how long a request may take. */
ingest *ingest_open(const char *bootstrap, const char *topic_prefix, const config_props *props,
                    int timeout_ms, eie_err *err);
void ingest_close(ingest *in);

/* Produces the n records and waits for every delivery report. status[i] is set
 * to 1 when record i was acknowledged, 0 when not. Returns how many were. */
size_t ingest_send(ingest *in, const reading *records, size_t n, unsigned char *status,
                   eie_err *err);

/* The topic a kind of reading goes to. */
const char *ingest_topic(const ingest *in, reading_kind kind);

/* Whether a broker answers a metadata request within timeout_ms. */
int ingest_kafka_reachable(ingest *in, int timeout_ms);

#endif
