/* eie-admin keys create|list|revoke: the API key file (lib/api_keys.h).
 * create prints the new key once, on stdout, and writes only its hash; the
 * file is rewritten whole through a rename, so a running eie-api reloading
 * it (SIGHUP) reads either the old file or the new one. */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "api_keys.h"
#include "config.h"

#define KEYS_FILE_HELP "the API key file (created if missing)"

/* Two of these changing the file at once would each write back what it read,
 * and one change would be lost: they take turns by an exclusive lock on the
 * file's folder (the file itself is replaced by every change, so a lock on it
 * would be on the old one). Returns the descriptor to close, or -1. */
static int lock_folder(const char *path, const char *program)
{
    char *copy = strdup(path);
    int fd = copy ? open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        fprintf(stderr, "%s: cannot lock the folder of %s: %s\n", program, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    free(copy);
    return fd;
}

/* The file's keys; a file that does not exist yet has none. */
static int load(const char *path, api_key_list *keys, const char *program)
{
    eie_err err;
    FILE *f = fopen(path, "rb");
    if (!f && errno == ENOENT) {
        *keys = (api_key_list){0};
        return 0;
    }
    if (f)
        fclose(f);
    if (api_keys_load_file(path, keys, &err) < 0) {
        fprintf(stderr, "%s: %s\n", program, err.msg);
        return -1;
    }
    return 0;
}

static int parse(config_spec *spec, int argc, char **argv)
{
    int first;
    config_result cr = config_parse(spec, argc, argv, NULL, &first);
    return cr == CONFIG_OK ? -1 : cr == CONFIG_HELP_SHOWN ? 0 : 2;
}

static int run_create(int argc, char **argv)
{
    const char *path, *name, *role_name;
    double rate, burst;
    config_option options[] = {
        {"keys-file", 'f', "EIE_API_KEYS_FILE", CONFIG_STRING, &path, NULL, 0, 0, KEYS_FILE_HELP},
        {"name", 'n', NULL, CONFIG_STRING, &name, NULL, 0, 0,
         "the key's name, what logs and metrics show (1 to 64 of A-Z a-z 0-9 . _ -)"},
        {"role", 'r', NULL, CONFIG_STRING, &role_name, "read", 0, 0,
         "read, write (ingest and assignments, and read) or admin (all)"},
        {"rate", 0, NULL, CONFIG_DOUBLE, &rate, "-1", -1, 1e6,
         "the key's write requests per second (0: no limit; -1: eie-api's --write-rate)"},
        {"burst", 0, NULL, CONFIG_DOUBLE, &burst, "-1", -1, 1e9,
         "the key's burst of write requests (-1: eie-api's --write-burst)"},
    };
    config_spec spec = {"eie-admin keys create", "--keys-file FILE --name NAME [--role ROLE]",
                        "Makes a new API key, adds its hash to the key file, and prints the key\n"
                        "on stdout: the only time it is shown. Send eie-api SIGHUP to load it.",
                        options, sizeof options / sizeof options[0], false, false};
    int status = parse(&spec, argc, argv);
    if (status >= 0)
        return status;
    api_key_entry e = {.rate = rate, .burst = burst};
    if (!path || !name) {
        fprintf(stderr, "%s: %s is required\n", spec.program,
                !path ? "--keys-file (EIE_API_KEYS_FILE)" : "--name");
        return 2;
    }
    if (!api_key_name_valid(name)) {
        fprintf(stderr, "%s: invalid --name '%s': 1 to %d of A-Z a-z 0-9 . _ -\n", spec.program,
                name, API_KEY_NAME_MAX);
        return 2;
    }
    if (api_role_parse(role_name, &e.role) < 0) {
        fprintf(stderr, "%s: invalid --role '%s': expected read, write or admin\n", spec.program,
                role_name);
        return 2;
    }
    if (burst >= 0 && burst < 1) {
        fprintf(stderr, "%s: invalid --burst '%g': at least 1, or -1\n", spec.program, burst);
        return 2;
    }
    strcpy(e.name, name);
    char key[API_KEY_TEXT_SIZE];
    if (api_key_generate(key, e.hash) < 0) {
        fprintf(stderr, "%s: libsodium could not be initialised\n", spec.program);
        return 1;
    }
    api_key_list keys;
    eie_err err;
    int lock = lock_folder(path, spec.program);
    if (lock < 0 || load(path, &keys, spec.program) < 0) {
        if (lock >= 0)
            close(lock);
        return 1;
    }
    int rc = 1;
    if (api_keys_add(&keys, &e, &err) < 0 || api_keys_save_file(path, &keys, &err) < 0) {
        fprintf(stderr, "%s: %s\n", spec.program, err.msg);
    } else {
        printf("%s\n", key);
        fflush(stdout);
        fprintf(stderr, "key '%s' (%s) added to %s; it is shown only now. Send eie-api SIGHUP "
                        "to load it.\n",
                e.name, api_role_name(e.role), path);
        rc = 0;
    }
    close(lock);
    api_keys_free(&keys);
    return rc;
}

static int run_list(int argc, char **argv)
{
    const char *path;
    config_option options[] = {
        {"keys-file", 'f', "EIE_API_KEYS_FILE", CONFIG_STRING, &path, NULL, 0, 0, "the API key file"},
    };
    config_spec spec = {"eie-admin keys list", "--keys-file FILE",
                        "Lists the keys of the key file: name, role, rate and burst (the keys\n"
                        "themselves are not in the file).",
                        options, 1, false, false};
    int status = parse(&spec, argc, argv);
    if (status >= 0)
        return status;
    if (!path) {
        fprintf(stderr, "%s: --keys-file (EIE_API_KEYS_FILE) is required\n", spec.program);
        return 2;
    }
    api_key_list keys;
    eie_err err;
    if (api_keys_load_file(path, &keys, &err) < 0) {
        fprintf(stderr, "%s: %s\n", spec.program, err.msg);
        return 1;
    }
    printf("%-24s %-6s %-10s %s\n", "NAME", "ROLE", "RATE", "BURST");
    for (size_t i = 0; i < keys.n; i++) {
        const api_key_entry *e = &keys.items[i];
        char rate[32] = "default", burst[32] = "default";
        if (e->rate >= 0)
            snprintf(rate, sizeof rate, "%.15g", e->rate);
        if (e->burst >= 0)
            snprintf(burst, sizeof burst, "%.15g", e->burst);
        printf("%-24s %-6s %-10s %s\n", e->name, api_role_name(e->role), rate, burst);
    }
    api_keys_free(&keys);
    return 0;
}

static int run_revoke(int argc, char **argv)
{
    const char *path, *name;
    config_option options[] = {
        {"keys-file", 'f', "EIE_API_KEYS_FILE", CONFIG_STRING, &path, NULL, 0, 0, "the API key file"},
        {"name", 'n', NULL, CONFIG_STRING, &name, NULL, 0, 0, "the name of the key to remove"},
    };
    config_spec spec = {"eie-admin keys revoke", "--keys-file FILE --name NAME",
                        "Removes a key from the key file. Send eie-api SIGHUP to stop accepting it.",
                        options, 2, false, false};
    int status = parse(&spec, argc, argv);
    if (status >= 0)
        return status;
    if (!path || !name) {
        fprintf(stderr, "%s: %s is required\n", spec.program,
                !path ? "--keys-file (EIE_API_KEYS_FILE)" : "--name");
        return 2;
    }
    api_key_list keys;
    eie_err err;
    int lock = lock_folder(path, spec.program);
    if (lock < 0)
        return 1;
    if (api_keys_load_file(path, &keys, &err) < 0) {
        fprintf(stderr, "%s: %s\n", spec.program, err.msg);
        close(lock);
        return 1;
    }
    int rc = 1;
    if (api_keys_remove(&keys, name) < 0) {
        fprintf(stderr, "%s: no key named '%s' in %s\n", spec.program, name, path);
    } else if (api_keys_save_file(path, &keys, &err) < 0) {
        fprintf(stderr, "%s: %s\n", spec.program, err.msg);
    } else {
        fprintf(stderr, "key '%s' removed from %s. Send eie-api SIGHUP to stop accepting it.\n",
                name, path);
        rc = 0;
    }
    close(lock);
    api_keys_free(&keys);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: eie-admin keys create|list|revoke [options]\n\n"
                 "Keeps the API key file of eie-api (--keys-file, EIE_API_KEYS_FILE).\n\n"
                 "  create   make a key, print it once, add its hash to the file\n"
                 "  list     the file's keys: name, role, limits\n"
                 "  revoke   remove a key by name\n\n"
                 "Run 'eie-admin keys COMMAND --help' for a command's options.\n");
}

int keys_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "create") == 0)
        return run_create(argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return run_list(argc - 1, argv + 1);
    if (strcmp(argv[1], "revoke") == 0)
        return run_revoke(argc - 1, argv + 1);
    fprintf(stderr, "eie-admin keys: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
