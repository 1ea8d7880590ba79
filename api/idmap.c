/* Device ids to indexes; see idmap.h. */
#include "idmap.h"

#include <stdlib.h>
#include <string.h>

void idmap_init(idmap *m, reading_kind kind)
{
    memset(m, 0, sizeof *m);
    m->kind = kind;
}

void idmap_free(idmap *m)
{
    free(m->ids);
    free(m->slots);
    idmap_init(m, m->kind);
}

/* The slot holding id, or the free slot where it would go. */
static size_t probe(const idmap *m, const char *id)
{
    size_t mask = m->cap_slots - 1;
    size_t i = (size_t)reading_hash_id(m->kind, id) & mask;
    while (m->slots[i] && strcmp(m->ids[m->slots[i] - 1], id) != 0)
        i = (i + 1) & mask;
    return i;
}

long idmap_find(const idmap *m, const char *id)
{
    if (!m->cap_slots || strlen(id) > READING_ID_MAX)
        return -1;
    return m->slots[probe(m, id)] - 1;
}

static void *grown(void *p, size_t n, size_t size)
{
    void *q = realloc(p, n * size);
    if (!q)
        abort();
    return q;
}

long idmap_add(idmap *m, const char *id)
{
    if (strlen(id) > READING_ID_MAX)
        return -1;
    /* At most half full, so probes stay short. */
    if ((m->n + 1) * 2 > m->cap_slots) {
        size_t cap = m->cap_slots ? m->cap_slots * 2 : 1024;
        free(m->slots);
        m->slots = calloc(cap, sizeof *m->slots);
        if (!m->slots)
            abort();
        m->cap_slots = cap;
        for (size_t k = 0; k < m->n; k++)
            m->slots[probe(m, m->ids[k])] = (long)k + 1;
    }
    size_t i = probe(m, id);
    if (m->slots[i])
        return m->slots[i] - 1;
    if (m->n == m->cap_ids) {
        m->cap_ids = m->cap_ids ? m->cap_ids * 2 : 1024;
        m->ids = grown(m->ids, m->cap_ids, sizeof *m->ids);
    }
    strcpy(m->ids[m->n], id);
    m->slots[i] = (long)++m->n;
    return (long)m->n - 1;
}
