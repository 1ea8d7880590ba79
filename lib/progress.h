/* Progress of long work: a bar with rate and ETA when stderr is a terminal,
 * a log line every few seconds otherwise. */
#ifndef EIE_PROGRESS_H
#define EIE_PROGRESS_H

#include <stdint.h>

typedef struct progress {
    const char *label;
    uint64_t total; /* 0 when unknown: no bar, no ETA */
    uint64_t done;
    int64_t start_ms, last_draw_ms;
    int tty;
} progress;

void progress_start(progress *p, const char *label, uint64_t total);
/* Cheap to call often: it redraws at most a few times a second. */
void progress_update(progress *p, uint64_t done);
void progress_finish(progress *p);

#endif
