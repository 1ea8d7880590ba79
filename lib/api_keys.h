/* API keys and the key file, shared by eie-api (which checks keys) and
 * `eie-admin keys` (which makes and revokes them).
 *
 * A key is 32 random bytes, shown once as "eie_" + base64url (43 characters).
 * The file keeps only a hash of it, one key a line:
 *
 *   # comment
 *   NAME ROLE blake2b256:HEX [rate=PER_SECOND] [burst=REQUESTS]
 *
 * NAME is 1 to 64 of [A-Za-z0-9._-] (it is what logs and metrics show), ROLE
 * read, write or admin (admin includes write, write includes read), rate and
 * burst the key's own token bucket on write routes (else the server's).
 * The hash is unkeyed BLAKE2b-256 of the key as presented: the key carries
 * 256 bits of entropy, so no search over hashes can find it however fast the
 * hash is, and a fast hash keeps every request cheap (README, Access). */
#ifndef EIE_API_KEYS_H
#define EIE_API_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define API_KEY_NAME_MAX 64
#define API_KEY_HASH_BYTES 32
#define API_KEY_RANDOM_BYTES 32
#define API_KEY_PREFIX "eie_"
/* "eie_" and 43 base64url characters, and the NUL. */
#define API_KEY_TEXT_SIZE 48
#define API_KEY_HASH_TAG "blake2b256:"

typedef enum { API_ROLE_READ = 1, API_ROLE_WRITE = 2, API_ROLE_ADMIN = 3 } api_role;

typedef struct api_key_entry {
    char name[API_KEY_NAME_MAX + 1];
    api_role role;
    unsigned char hash[API_KEY_HASH_BYTES];
    double rate;  /* requests per second on write routes; < 0: the server's */
    double burst; /* bucket size; < 0: the server's */
} api_key_entry;

typedef struct api_key_list {
    api_key_entry *items;
    size_t n;
} api_key_list;

const char *api_role_name(api_role role);
/* 0 and *role set, or -1 for a name that is not a role. */
int api_role_parse(const char *name, api_role *role);
/* 1 when name is a valid key name. */
int api_key_name_valid(const char *name);

/* Parses the key file's text (entries end at a newline or ';', so the same
 * text fits in one environment variable). An empty text is an empty list.
 * On error (-1), err names the entry (line N) and what is wrong; *out is
 * left empty. Names and hashes must be unique. */
int api_keys_parse(const char *text, size_t len, api_key_list *out, eie_err *err);
/* Reads and parses a key file. */
int api_keys_load_file(const char *path, api_key_list *out, eie_err *err);
/* Writes the list to path through a temporary file renamed over it (mode
 * 0600), so a server reloading it never sees half a file. */
int api_keys_save_file(const char *path, const api_key_list *list, eie_err *err);
/* Appends a copy of e (its name must not be in the list yet). */
int api_keys_add(api_key_list *list, const api_key_entry *e, eie_err *err);
/* Removes the entry of that name: 0, or -1 when there is none. */
int api_keys_remove(api_key_list *list, const char *name);
void api_keys_free(api_key_list *list);

/* The hash of a key as presented (any bytes). */
void api_key_hash(const char *key, size_t len, unsigned char hash[API_KEY_HASH_BYTES]);
/* The entry whose hash is this one, or NULL. Every entry is compared in full
 * with sodium_memcmp, so the time taken says nothing about which hash, or
 * how much of one, matched. */
const api_key_entry *api_keys_find(const api_key_list *list,
                                   const unsigned char hash[API_KEY_HASH_BYTES]);

/* A new random key (text) and its hash: -1 when libsodium cannot start. */
int api_key_generate(char text[API_KEY_TEXT_SIZE], unsigned char hash[API_KEY_HASH_BYTES]);

#endif
