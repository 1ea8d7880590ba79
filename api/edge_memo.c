/* Sums of settled history ranges; see edge_memo.h. */
#include "edge_memo.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Slots share a lock by their number: requests for different devices seldom
 * wait for each other, and a lock per slot would cost more than the slots. */
#define LOCKS 64
/* Slots per bucket: with one, keys that hash alike evict each other for good
 * (a quarter of 40,000 ranges in 131,072 slots). With four, 2 to 4% of a
 * 10,000-vehicle fleet's ranges (five or six a report) found their bucket
 * full, and kept pushing each other out: 6 to 10% of the reports at rest read
 * an edge from the history (bench/api.sh). With eight and twice the slots,
 * fewer than one range in a thousand. */
#define WAYS 8

typedef struct slot {
    char id[READING_ID_MAX + 1]; /* "": empty */
    reading_kind kind;
    int64_t lo_ms, hi_ms;
    double kwh, temp_sum;
    long long readings;
    db_stamp stamp;
} slot;

struct edge_memo {
    size_t buckets;
    slot *slots;
    pthread_mutex_t locks[LOCKS];
};

edge_memo *edge_memo_new(size_t slots)
{
    if (slots < WAYS)
        return NULL;
    edge_memo *m = calloc(1, sizeof *m);
    /* calloc: pages of slots never used are never touched, so take no memory. */
    if (!m || !(m->slots = calloc(slots / WAYS * WAYS, sizeof *m->slots))) {
        free(m);
        return NULL;
    }
    m->buckets = slots / WAYS;
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_init(&m->locks[i], NULL);
    return m;
}

void edge_memo_free(edge_memo *m)
{
    if (!m)
        return;
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_destroy(&m->locks[i]);
    free(m->slots);
    free(m);
}

/* FNV-1a over the key, mixed. */
static uint64_t hash_of(const edge_range *r)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)r->id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    const int64_t words[] = {r->kind, r->lo_ms, r->hi_ms};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        h = (h ^ (uint64_t)words[i]) * 1099511628211ULL;
    /* FNV's low bits depend on its input's low bits alone, and the bucket is
     * taken from them: mixed first (MurmurHash3's finalizer). */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static bool same_key(const slot *s, const edge_range *r)
{
    return s->id[0] && s->kind == r->kind && s->lo_ms == r->lo_ms && s->hi_ms == r->hi_ms &&
           strcmp(s->id, r->id) == 0;
}

/* The key's bucket: its first slot, and the lock it is under. */
static slot *bucket_of(edge_memo *m, uint64_t h, pthread_mutex_t **lock)
{
    size_t b = (size_t)(h % m->buckets);
    *lock = &m->locks[b % LOCKS];
    return &m->slots[b * WAYS];
}

bool edge_memo_get(edge_memo *m, edge_range *r, db_stamp *stamp)
{
    if (!m)
        return false;
    pthread_mutex_t *lock;
    const slot *bucket = bucket_of(m, hash_of(r), &lock);
    bool found = false;
    pthread_mutex_lock(lock);
    for (int w = 0; w < WAYS && !found; w++) {
        const slot *s = &bucket[w];
        if ((found = same_key(s, r))) {
            r->kwh = s->kwh;
            r->temp_sum = s->temp_sum;
            r->readings = s->readings;
            *stamp = s->stamp;
        }
    }
    pthread_mutex_unlock(lock);
    return found;
}

void edge_memo_put(edge_memo *m, const edge_range *r, db_stamp stamp)
{
    if (!m || strlen(r->id) > READING_ID_MAX)
        return;
    uint64_t h = hash_of(r);
    pthread_mutex_t *lock;
    slot *bucket = bucket_of(m, h, &lock);
    pthread_mutex_lock(lock);
    /* The key's own slot, else an empty one, else one picked by the hash's
     * high bits: a full bucket loses a key at random rather than always the
     * same one. */
    slot *s = NULL;
    for (int w = 0; w < WAYS && !s; w++)
        if (same_key(&bucket[w], r))
            s = &bucket[w];
    for (int w = 0; w < WAYS && !s; w++)
        if (!bucket[w].id[0])
            s = &bucket[w];
    if (!s)
        s = &bucket[(h >> 32) % WAYS];
    snprintf(s->id, sizeof s->id, "%s", r->id);
    s->kind = r->kind;
    s->lo_ms = r->lo_ms;
    s->hi_ms = r->hi_ms;
    s->kwh = r->kwh;
    s->temp_sum = r->temp_sum;
    s->readings = r->readings;
    s->stamp = stamp;
    pthread_mutex_unlock(lock);
}
