/* Device ids to dense indexes 0..n-1, for the tables the API's caches keep per
 * device: open addressing over reading_hash_id. Not synchronised; the caches
 * lock around it. */
#ifndef EIE_IDMAP_H
#define EIE_IDMAP_H

#include <stddef.h>

#include "reading.h"

typedef struct idmap {
    reading_kind kind;               /* which hash (ids of each kind hash apart) */
    char (*ids)[READING_ID_MAX + 1]; /* by index */
    size_t n, cap_ids;
    long *slots; /* index + 1, or 0 when free */
    size_t cap_slots;
} idmap;

void idmap_init(idmap *m, reading_kind kind);
void idmap_free(idmap *m);

/* The id's index, or -1 when it has none (or is longer than ids can be). */
long idmap_find(const idmap *m, const char *id);

/* The id's index, given a new one (n - 1) when it had none; -1 for an id
 * longer than READING_ID_MAX. Aborts when out of memory. */
long idmap_add(idmap *m, const char *id);

#endif
