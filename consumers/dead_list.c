/* A batch's dead letters, copied from the messages they replace, until they
 * are acknowledged; see dead_letter.h. */
#include <stdlib.h>
#include <string.h>

#include "dead_letter_item.h"

static void *copy_bytes(const void *src, size_t len)
{
    void *dst = malloc(len ? len : 1);
    if (!dst)
        abort();
    if (len)
        memcpy(dst, src, len);
    return dst;
}

void dead_list_add(dead_list *list, const rd_kafka_message_t *msg, dead_reason reason,
                   const char *detail)
{
    if (list->n == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 16;
        list->items = realloc(list->items, list->cap * sizeof *list->items);
        if (!list->items)
            abort();
    }
    dead_letter *d = &list->items[list->n++];
    *d = (dead_letter){.reason = reason,
                       .detail = strdup(detail),
                       .topic = strdup(rd_kafka_topic_name(msg->rkt)),
                       .partition = msg->partition,
                       .offset = msg->offset,
                       .key_len = msg->key ? msg->key_len : 0,
                       .value_len = msg->payload ? msg->len : 0};
    if (!d->detail || !d->topic)
        abort();
    d->key = msg->key ? copy_bytes(msg->key, msg->key_len) : NULL;
    d->value = msg->payload ? copy_bytes(msg->payload, msg->len) : NULL;
    rd_kafka_headers_t *headers;
    if (rd_kafka_message_headers(msg, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        d->headers = rd_kafka_headers_copy(headers);
        const char *name;
        const void *value;
        size_t size;
        for (size_t i = 0; !rd_kafka_header_get_all(headers, i, &name, &value, &size); i++) {
            d->n_headers++;
            d->headers_bytes += strlen(name) + size + HEADER_OVERHEAD_BYTES;
        }
    }
}

size_t dead_list_unsure(const dead_list *list, dead_seen_source *sources)
{
    size_t n = 0;
    for (size_t i = 0; i < list->n; i++) {
        const dead_letter *d = &list->items[i];
        if (d->acked || !d->unsure)
            continue;
        size_t j = 0; /* this partition's, if any */
        while (j < n &&
               (sources[j].partition != d->partition || strcmp(sources[j].topic, d->topic) != 0))
            j++;
        if (j == n)
            sources[n++] = (dead_seen_source){d->topic, d->partition, d->offset};
        else if (d->offset < sources[j].from)
            sources[j].from = d->offset;
    }
    return n;
}

void dead_list_unsure_checked(dead_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        list->items[i].unsure = false;
    list->n_unsure = 0;
}

void dead_list_clear(dead_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->items[i].detail);
        free(list->items[i].topic);
        free(list->items[i].key);
        free(list->items[i].value);
        if (list->items[i].headers)
            rd_kafka_headers_destroy(list->items[i].headers);
    }
    list->n = list->n_acked = list->n_unsure = 0;
    list->first_sent_ms = 0;
}

void dead_list_free(dead_list *list)
{
    dead_list_clear(list);
    free(list->items);
    memset(list, 0, sizeof *list);
}
