/* API keys and the key file; see api_keys.h. */
#include "api_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A key file holds a few keys; anything this large is not one. */
#define MAX_FILE_BYTES (1 << 20)
#define MAX_FIELDS 8

static const char *const role_names[] = {[API_ROLE_READ] = "read",
                                         [API_ROLE_WRITE] = "write",
                                         [API_ROLE_ADMIN] = "admin"};

const char *api_role_name(api_role role)
{
    return role >= API_ROLE_READ && role <= API_ROLE_ADMIN ? role_names[role] : "?";
}

int api_role_parse(const char *name, api_role *role)
{
    for (int r = API_ROLE_READ; r <= API_ROLE_ADMIN; r++)
        if (strcmp(name, role_names[r]) == 0) {
            *role = (api_role)r;
            return 0;
        }
    return -1;
}

int api_key_name_valid(const char *name)
{
    size_t n = strlen(name);
    return n >= 1 && n <= API_KEY_NAME_MAX &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* "rate=2.5" into *value: a finite number of at least min. */
static int parse_option(const char *field, const char *key, double min, double *value)
{
    size_t n = strlen(key);
    if (strncmp(field, key, n) != 0 || field[n] != '=')
        return 0;
    char *end;
    errno = 0;
    double v = strtod(field + n + 1, &end);
    if (errno || end == field + n + 1 || *end || !isfinite(v) || v < min)
        return -1;
    *value = v;
    return 1;
}

/* One entry's fields into e; -1 with err set (without the line number). */
static int parse_entry(char **fields, int n, api_key_entry *e, eie_err *err)
{
    if (n < 3) {
        eie_err_set(err, "expected NAME ROLE %sHEX [rate=N] [burst=N]", API_KEY_HASH_TAG);
        return -1;
    }
    *e = (api_key_entry){.rate = -1, .burst = -1};
    if (!api_key_name_valid(fields[0])) {
        eie_err_set(err, "bad name '%.80s': 1 to %d of A-Z a-z 0-9 . _ -", fields[0],
                    API_KEY_NAME_MAX);
        return -1;
    }
    strcpy(e->name, fields[0]);
    if (api_role_parse(fields[1], &e->role) < 0) {
        eie_err_set(err, "key '%s': bad role '%.40s': expected read, write or admin", e->name,
                    fields[1]);
        return -1;
    }
    const char *hex = fields[2] + strlen(API_KEY_HASH_TAG);
    size_t bin_len = 0;
    if (strncmp(fields[2], API_KEY_HASH_TAG, strlen(API_KEY_HASH_TAG)) != 0 ||
        strlen(hex) != 2 * API_KEY_HASH_BYTES ||
        sodium_hex2bin(e->hash, sizeof e->hash, hex, strlen(hex), NULL, &bin_len, NULL) != 0 ||
        bin_len != API_KEY_HASH_BYTES) {
        eie_err_set(err, "key '%s': the hash must be %s and %d hex digits (a key itself never "
                    "goes in the file; eie-admin keys create writes the line)",
                    e->name, API_KEY_HASH_TAG, 2 * API_KEY_HASH_BYTES);
        return -1;
    }
    for (int i = 3; i < n; i++) {
        int r = parse_option(fields[i], "rate", 0, &e->rate);
        if (r == 0)
            r = parse_option(fields[i], "burst", 1, &e->burst);
        if (r <= 0) {
            eie_err_set(err, "key '%s': bad option '%.40s': expected rate=N (per second, 0: no "
                        "limit) or burst=N (at least 1)", e->name, fields[i]);
            return -1;
        }
    }
    return 0;
}

/* Splits line in place at blanks; -1 when it has more than max fields. */
static int split_fields(char *line, char **fields, int max)
{
    int n = 0;
    for (char *p = line; *p;) {
        p += strspn(p, " \t\r");
        if (!*p)
            break;
        if (n == max)
            return -1;
        fields[n++] = p;
        p += strcspn(p, " \t\r");
        if (*p)
            *p++ = '\0';
    }
    return n;
}

static int find_name(const api_key_list *list, const char *name)
{
    for (size_t i = 0; i < list->n; i++)
        if (strcmp(list->items[i].name, name) == 0)
            return (int)i;
    return -1;
}

int api_keys_add(api_key_list *list, const api_key_entry *e, eie_err *err)
{
    if (find_name(list, e->name) >= 0) {
        eie_err_set(err, "there is a key named '%s' already", e->name);
        return -1;
    }
    for (size_t i = 0; i < list->n; i++)
        if (sodium_memcmp(list->items[i].hash, e->hash, API_KEY_HASH_BYTES) == 0) {
            eie_err_set(err, "keys '%s' and '%s' have the same hash", list->items[i].name, e->name);
            return -1;
        }
    api_key_entry *grown = realloc(list->items, (list->n + 1) * sizeof *grown);
    if (!grown) {
        eie_err_set(err, "out of memory");
        return -1;
    }
    list->items = grown;
    list->items[list->n++] = *e;
    return 0;
}

int api_keys_parse(const char *text, size_t len, api_key_list *out, eie_err *err)
{
    *out = (api_key_list){0};
    char *copy = malloc(len + 1);
    if (!copy) {
        eie_err_set(err, "out of memory");
        return -1;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (strlen(copy) != len) {
        free(copy);
        eie_err_set(err, "the key list holds a NUL byte");
        return -1;
    }
    size_t line_no = 0;
    int rc = 0;
    for (char *line = copy; rc == 0 && line;) {
        line_no++;
        /* A comment runs to the end of its line, ';' and all. */
        bool comment = line[strspn(line, " \t\r")] == '#';
        char *next = line + strcspn(line, comment ? "\n" : "\n;");
        next = *next ? (*next = '\0', next + 1) : NULL;
        char *fields[MAX_FIELDS];
        int n = split_fields(line, fields, MAX_FIELDS);
        api_key_entry e;
        if (comment || n == 0) {
            /* nothing to read */
        } else if (n < 0 || parse_entry(fields, n, &e, err) < 0 || api_keys_add(out, &e, err) < 0) {
            if (n < 0)
                eie_err_set(err, "too many fields");
            eie_err_prefix(err, "line %zu", line_no);
            rc = -1;
        }
        line = next;
    }
    free(copy);
    if (rc < 0)
        api_keys_free(out);
    return rc;
}

int api_keys_load_file(const char *path, api_key_list *out, eie_err *err)
{
    *out = (api_key_list){0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        eie_err_set(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = malloc(MAX_FILE_BYTES + 1);
    size_t n = text ? fread(text, 1, MAX_FILE_BYTES + 1, f) : 0;
    int rc = -1;
    if (!text)
        eie_err_set(err, "%s: out of memory", path);
    else if (ferror(f))
        eie_err_set(err, "%s: cannot read it", path);
    else if (n > MAX_FILE_BYTES)
        eie_err_set(err, "%s: larger than %d bytes", path, MAX_FILE_BYTES);
    else if ((rc = api_keys_parse(text, n, out, err)) < 0)
        eie_err_prefix(err, "%s", path);
    free(text);
    fclose(f);
    return rc;
}

static void write_entry(FILE *f, const api_key_entry *e)
{
    char hex[2 * API_KEY_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, e->hash, sizeof e->hash);
    fprintf(f, "%s %s %s%s", e->name, api_role_name(e->role), API_KEY_HASH_TAG, hex);
    if (e->rate >= 0)
        fprintf(f, " rate=%.15g", e->rate);
    if (e->burst >= 0)
        fprintf(f, " burst=%.15g", e->burst);
    fputc('\n', f);
}

int api_keys_save_file(const char *path, const api_key_list *list, eie_err *err)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + sizeof ".tmp.XXXXXX");
    if (!tmp) {
        eie_err_set(err, "out of memory");
        return -1;
    }
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    int fd = mkstemp(tmp); /* mode 0600 */
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        eie_err_set(err, "cannot write next to %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(tmp);
        return -1;
    }
    fprintf(f, "# API keys of eie-api: NAME ROLE HASH [rate=N] [burst=N], one a line.\n"
               "# Hashes only, kept by eie-admin keys create|list|revoke.\n");
    for (size_t i = 0; i < list->n; i++)
        write_entry(f, &list->items[i]);
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        eie_err_set(err, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int api_keys_remove(api_key_list *list, const char *name)
{
    int i = find_name(list, name);
    if (i < 0)
        return -1;
    memmove(&list->items[i], &list->items[i + 1], (list->n - (size_t)i - 1) * sizeof *list->items);
    list->n--;
    return 0;
}

void api_keys_free(api_key_list *list)
{
    free(list->items);
    *list = (api_key_list){0};
}

void api_key_hash(const char *key, size_t len, unsigned char hash[API_KEY_HASH_BYTES])
{
    crypto_generichash(hash, API_KEY_HASH_BYTES, (const unsigned char *)key, len, NULL, 0);
}

const api_key_entry *api_keys_find(const api_key_list *list,
                                   const unsigned char hash[API_KEY_HASH_BYTES])
{
    const api_key_entry *found = NULL;
    for (size_t i = 0; i < list->n; i++) {
        /* No early exit: every entry costs the same whether it matches or not. */
        int match = sodium_memcmp(list->items[i].hash, hash, API_KEY_HASH_BYTES) == 0;
        if (match)
            found = &list->items[i];
    }
    return found;
}

int api_key_generate(char text[API_KEY_TEXT_SIZE], unsigned char hash[API_KEY_HASH_BYTES])
{
    if (sodium_init() < 0)
        return -1;
    unsigned char random[API_KEY_RANDOM_BYTES];
    randombytes_buf(random, sizeof random);
    memcpy(text, API_KEY_PREFIX, strlen(API_KEY_PREFIX));
    sodium_bin2base64(text + strlen(API_KEY_PREFIX), API_KEY_TEXT_SIZE - strlen(API_KEY_PREFIX),
                      random, sizeof random, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(random, sizeof random);
    api_key_hash(text, strlen(text), hash);
    return 0;
}
