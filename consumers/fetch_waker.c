/* The fetch waker's thread: see fetch_waker.h. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "fetch_waker.h"
#include "log.h"

/* How long a request may wait for its reply: behind a fetch held by the
 * broker (fetch.wait.max.ms) at most, since the broker answers a
 * connection's requests in order. */
#define WAKE_TIMEOUT_MS 5000

struct fetch_waker {
    rd_kafka_t *rk;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t poked;
    bool pending, quit;
};

static void wake_leaders(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(rk, &parts) || !parts) /* assignment changing: no matter */
        return;
    if (parts->cnt) {
        for (int i = 0; i < parts->cnt; i++)
            parts->elems[i].offset = RD_KAFKA_OFFSET_END; /* as a timestamp: the latest */
        rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, parts, WAKE_TIMEOUT_MS);
        if (e)
            log_debug("fetch waker: asking for end offsets: %s", rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

static void *waker_main(void *arg)
{
    fetch_waker *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->pending && !w->quit)
            pthread_cond_wait(&w->poked, &w->lock);
        if (w->quit)
            break;
        w->pending = false;
        pthread_mutex_unlock(&w->lock);
        wake_leaders(w->rk);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

fetch_waker *fetch_waker_start(rd_kafka_t *rk)
{
    fetch_waker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->rk = rk;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->poked, NULL);
    if (pthread_create(&w->thread, NULL, waker_main, w) != 0) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->poked);
        free(w);
        return NULL;
    }
    return w;
}

void fetch_waker_poke(fetch_waker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    if (!w->pending) {
        w->pending = true;
        pthread_cond_signal(&w->poked);
    }
    pthread_mutex_unlock(&w->lock);
}

void fetch_waker_stop(fetch_waker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->quit = true;
    pthread_cond_signal(&w->poked);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->poked);
    free(w);
}
