/* Configuration from flags and environment (12-factor): each option has a long
 * flag, an optional environment variable and a default; a flag beats the
 * environment, which beats the default. Every program also takes
 * -X key=value (repeatable) and EIE_KAFKA_PROPERTIES="key=value,key=value",
 * passed to librdkafka unchanged, as kcat does. */
#ifndef EIE_CONFIG_H
#define EIE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { CONFIG_STRING, CONFIG_INT, CONFIG_DOUBLE, CONFIG_FLAG } config_type;

typedef struct config_option {
    const char *flag;  /* long flag without dashes: "bootstrap-servers" */
    char short_flag;   /* or 0 */
    const char *env;   /* or NULL */
    config_type type;
    void *value;       /* const char **, long *, double * or bool * */
    const char *default_value; /* text, parsed like a flag value; NULL: none */
    double min, max;   /* for CONFIG_INT and CONFIG_DOUBLE */
    const char *help;
} config_option;

/* key=value pairs for librdkafka, in the order given. */
typedef struct config_props {
    size_t n;
    char **keys;
    char **values;
} config_props;

typedef struct config_spec {
    const char *program;    /* "eie-consumer" */
    const char *usage;      /* "[options] [FILE...]" */
    const char *summary;    /* one paragraph: what the program does */
    config_option *options;
    size_t n_options;
    bool kafka_properties;  /* accept -X and EIE_KAFKA_PROPERTIES */
    bool takes_operands;    /* else an operand is bad usage */
} config_spec;

typedef enum {
    CONFIG_OK = 0,
    CONFIG_HELP_SHOWN,  /* --help was asked for: exit 0 */
    CONFIG_BAD_USAGE,   /* a message naming the setting was printed: exit 2 */
} config_result;

/* Parses argv from index 1. On CONFIG_OK, *first_arg is the index of the first
 * operand (argv[*first_arg..argc-1]). props may be NULL when the spec takes no
 * Kafka properties; otherwise the caller frees it with config_props_free. */
config_result config_parse(const config_spec *spec, int argc, char **argv, config_props *props,
                           int *first_arg);

/* Appends key=value; a later pair overrides an earlier one of the same key. */
void config_props_add(config_props *props, const char *key, const char *value);
void config_props_free(config_props *props);
void config_print_help(const config_spec *spec);

#endif
