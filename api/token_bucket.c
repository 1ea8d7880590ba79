/* The token bucket; see token_bucket.h. */
#include "token_bucket.h"

#include <math.h>

void token_bucket_init(token_bucket *b, double rate, double burst, int64_t now_ms)
{
    *b = (token_bucket){.rate = rate, .burst = burst < 1 ? 1 : burst, .last_ms = now_ms};
    b->tokens = b->burst;
}

bool token_bucket_take(token_bucket *b, int64_t now_ms, int64_t *retry_after_ms)
{
    if (b->rate <= 0)
        return true;
    if (now_ms > b->last_ms) {
        b->tokens = fmin(b->burst, b->tokens + (double)(now_ms - b->last_ms) * b->rate / 1000.0);
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return true;
    }
    /* Less a hair: (1 - 0.998) * 1000 / 2 must wait 1 ms, not 1.0000000001. */
    int64_t wait = (int64_t)ceil((1 - b->tokens) * 1000.0 / b->rate - 1e-6);
    *retry_after_ms = wait < 1 ? 1 : wait;
    return false;
}
