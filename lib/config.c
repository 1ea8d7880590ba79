/* Flags and environment; see config.h. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPTIONS 64
#define OPT_HELP 1000
#define OPT_X 'X'

static void props_add(config_props *props, const char *key, size_t key_len, const char *value)
{
    props->keys = realloc(props->keys, (props->n + 1) * sizeof *props->keys);
    props->values = realloc(props->values, (props->n + 1) * sizeof *props->values);
    if (!props->keys || !props->values) {
        fprintf(stderr, "out of memory\n");
        abort();
    }
    props->keys[props->n] = strndup(key, key_len);
    props->values[props->n] = strdup(value);
    props->n++;
}

void config_props_add(config_props *props, const char *key, const char *value)
{
    props_add(props, key, strlen(key), value);
}

void config_props_free(config_props *props)
{
    if (!props)
        return;
    for (size_t i = 0; i < props->n; i++) {
        free(props->keys[i]);
        free(props->values[i]);
    }
    free(props->keys);
    free(props->values);
    memset(props, 0, sizeof *props);
}

/* "key=value"; source names where it came from for the error message. */
static int props_parse_one(config_props *props, const char *item, size_t len, const char *program,
                           const char *source)
{
    const char *eq = memchr(item, '=', len);
    if (!eq || eq == item) {
        fprintf(stderr, "%s: %s: expected key=value, got '%.*s'\n", program, source, (int)len,
                item);
        return -1;
    }
    char *value = strndup(eq + 1, len - (size_t)(eq + 1 - item));
    props_add(props, item, (size_t)(eq - item), value);
    free(value);
    return 0;
}

static int set_value(const config_spec *spec, const config_option *opt, const char *text,
                     const char *source)
{
    char *end;
    switch (opt->type) {
    case CONFIG_STRING:
        *(const char **)opt->value = text;
        return 0;
    case CONFIG_FLAG:
        if (strcmp(text, "1") == 0 || strcmp(text, "true") == 0 || strcmp(text, "yes") == 0) {
            *(bool *)opt->value = true;
            return 0;
        }
        if (strcmp(text, "0") == 0 || strcmp(text, "false") == 0 || strcmp(text, "no") == 0 ||
            *text == '\0') {
            *(bool *)opt->value = false;
            return 0;
        }
        fprintf(stderr, "%s: invalid %s '%s': expected true or false\n", spec->program, source, text);
        return -1;
    case CONFIG_INT: {
        errno = 0;
        long v = strtol(text, &end, 10);
        if (errno || end == text || *end || v < opt->min || v > opt->max) {
            fprintf(stderr, "%s: invalid %s '%s': expected an integer from %.0f to %.0f\n",
                    spec->program, source, text, opt->min, opt->max);
            return -1;
        }
        *(long *)opt->value = v;
        return 0;
    }
    case CONFIG_DOUBLE: {
        errno = 0;
        double v = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(v) || v < opt->min || v > opt->max) {
            fprintf(stderr, "%s: invalid %s '%s': expected a number from %g to %g\n", spec->program,
                    source, text, opt->min, opt->max);
            return -1;
        }
        *(double *)opt->value = v;
        return 0;
    }
    }
    return -1;
}

void config_print_help(const config_spec *spec)
{
    printf("Usage: %s %s\n\n%s\n\nOptions:\n", spec->program, spec->usage, spec->summary);
    for (size_t i = 0; i < spec->n_options; i++) {
        const config_option *opt = &spec->options[i];
        char left[96];
        const char *arg = opt->type == CONFIG_FLAG     ? ""
                          : opt->type == CONFIG_STRING ? " VALUE"
                                                       : " N";
        if (opt->short_flag)
            snprintf(left, sizeof left, "-%c, --%s%s", opt->short_flag, opt->flag, arg);
        else
            snprintf(left, sizeof left, "    --%s%s", opt->flag, arg);
        printf("  %-32s %s", left, opt->help);
        if (opt->env)
            printf(" [env %s]", opt->env);
        if (opt->default_value && *opt->default_value)
            printf(" (default %s)", opt->default_value);
        printf("\n");
    }
    if (spec->kafka_properties)
        printf("  %-32s %s\n", "-X, --property KEY=VALUE",
               "any librdkafka property, passed through; repeatable "
               "[env EIE_KAFKA_PROPERTIES=\"k=v,k=v\"]");
    printf("  %-32s %s\n", "-h, --help", "show this help and exit");
}

config_result config_parse(const config_spec *spec, int argc, char **argv, config_props *props,
                           int *first_arg)
{
    struct option longopts[MAX_OPTIONS + 3];
    char shortopts[MAX_OPTIONS * 2 + 8] = "+h";
    size_t n = 0, s = 2;
    if (spec->n_options > MAX_OPTIONS)
        abort();
    for (size_t i = 0; i < spec->n_options; i++) {
        const config_option *opt = &spec->options[i];
        int has_arg = opt->type == CONFIG_FLAG ? no_argument : required_argument;
        longopts[n++] = (struct option){opt->flag, has_arg, NULL, (int)(OPT_HELP + 1 + i)};
        if (opt->short_flag) {
            shortopts[s++] = opt->short_flag;
            if (has_arg == required_argument)
                shortopts[s++] = ':';
        }
    }
    if (spec->kafka_properties) {
        longopts[n++] = (struct option){"property", required_argument, NULL, OPT_X};
        shortopts[s++] = 'X';
        shortopts[s++] = ':';
    }
    longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n] = (struct option){0, 0, 0, 0};
    shortopts[s] = '\0';

    /* Defaults first, then the environment, then flags. */
    for (size_t i = 0; i < spec->n_options; i++) {
        const config_option *opt = &spec->options[i];
        if (!opt->default_value) { /* an option without default starts empty */
            if (opt->type == CONFIG_STRING)
                *(const char **)opt->value = NULL;
            else if (opt->type == CONFIG_INT)
                *(long *)opt->value = 0;
            else if (opt->type == CONFIG_DOUBLE)
                *(double *)opt->value = 0;
            else
                *(bool *)opt->value = false;
        } else if (set_value(spec, opt, opt->default_value, "default") < 0) {
            abort(); /* a programming error, not a user's */
        }
        const char *env = opt->env ? getenv(opt->env) : NULL;
        if (env && *env) {
            char source[128];
            snprintf(source, sizeof source, "%s", opt->env);
            if (set_value(spec, opt, env, source) < 0)
                return CONFIG_BAD_USAGE;
        }
    }
    if (spec->kafka_properties && props) {
        const char *env = getenv("EIE_KAFKA_PROPERTIES");
        while (env && *env) {
            const char *comma = strchr(env, ',');
            size_t len = comma ? (size_t)(comma - env) : strlen(env);
            if (len && props_parse_one(props, env, len, spec->program, "EIE_KAFKA_PROPERTIES") < 0)
                return CONFIG_BAD_USAGE;
            env = comma ? comma + 1 : NULL;
        }
    }

    optind = 1;
    opterr = 0;
    int c, longindex;
    while ((c = getopt_long(argc, argv, shortopts, longopts, &longindex)) != -1) {
        if (c == 'h') {
            config_print_help(spec);
            return CONFIG_HELP_SHOWN;
        }
        if (c == OPT_X && props) {
            if (props_parse_one(props, optarg, strlen(optarg), spec->program, "-X") < 0)
                return CONFIG_BAD_USAGE;
            continue;
        }
        if (c == '?' || c == ':') {
            if (optopt && optopt < OPT_HELP)
                fprintf(stderr, "%s: unknown option or missing value: -%c\n", spec->program, optopt);
            else
                fprintf(stderr, "%s: unknown option or missing value: %s\n", spec->program,
                        argv[optind - 1]);
            fprintf(stderr, "Try '%s --help'.\n", spec->program);
            return CONFIG_BAD_USAGE;
        }
        const config_option *opt = NULL;
        if (c > OPT_HELP) {
            opt = &spec->options[c - OPT_HELP - 1];
        } else {
            for (size_t i = 0; i < spec->n_options && !opt; i++)
                if (spec->options[i].short_flag == c)
                    opt = &spec->options[i];
        }
        if (!opt)
            abort();
        char source[128];
        snprintf(source, sizeof source, "--%s", opt->flag);
        if (set_value(spec, opt, opt->type == CONFIG_FLAG ? "true" : optarg, source) < 0)
            return CONFIG_BAD_USAGE;
    }
    if (!spec->takes_operands && optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\nTry '%s --help'.\n", spec->program,
                argv[optind], spec->program);
        return CONFIG_BAD_USAGE;
    }
    *first_arg = optind;
    return CONFIG_OK;
}
