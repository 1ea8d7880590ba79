/* Restarts librdkafka's fetching as soon as the consumer has room again.
 *
 * librdkafka 2.0 stops fetching a partition once the consumer's queue holds
 * queued.min.messages or queued.max.messages.kbytes, and decides again only
 * when its broker thread wakes: for a reply, an operation, or after up to a
 * second (2.1 added fetch.queue.backoff.ms for this). A sink that drains the
 * queue faster than that second therefore idles for the rest of it: the cold
 * sink stored bursts of 120,000 rows, then waited 0.6 s, at a third of what
 * PostgreSQL takes (bench/ingest.sh). Poking asks the leaders of the assigned
 * partitions for their end offsets, a small request whose operation wakes each
 * broker thread, which then fetches again if the queue has room. The request
 * is made on a thread of its own, since it waits for the reply. */
#ifndef EIE_FETCH_WAKER_H
#define EIE_FETCH_WAKER_H

#include <librdkafka/rdkafka.h>

typedef struct fetch_waker fetch_waker;

/* NULL if the thread cannot be started (the sink then runs without it). */
fetch_waker *fetch_waker_start(rd_kafka_t *rk);
/* Never waits: a poke while one is in flight is merged with it. */
void fetch_waker_poke(fetch_waker *w);
/* Waits for a request in flight; before the consumer closes. NULL is fine. */
void fetch_waker_stop(fetch_waker *w);

#endif
