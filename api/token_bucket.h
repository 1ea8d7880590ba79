/* A token bucket: a request takes a token, tokens come back at a steady rate
 * up to the bucket's size, so a client may send a burst and then keeps to the
 * rate. Plain data without a lock or a clock of its own: the caller passes
 * the time and holds whatever lock guards the bucket. */
#ifndef EIE_TOKEN_BUCKET_H
#define EIE_TOKEN_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

typedef struct token_bucket {
    double rate;    /* tokens per second; 0: no limit */
    double burst;   /* the bucket's size */
    double tokens;
    int64_t last_ms; /* when tokens was last brought up to date */
} token_bucket;

/* A full bucket at now_ms. */
void token_bucket_init(token_bucket *b, double rate, double burst, int64_t now_ms);

/* Takes a token: true, or false with *retry_after_ms, how long until one is
 * there (at least 1). A clock that went back refills nothing. */
bool token_bucket_take(token_bucket *b, int64_t now_ms, int64_t *retry_after_ms);

#endif
