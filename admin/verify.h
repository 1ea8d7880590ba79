/* Store verification for eie-admin; see verify.c. */
#ifndef EIE_VERIFY_H
#define EIE_VERIFY_H

#include <stdint.h>

#include "err.h"

typedef struct verify_result {
    uint64_t compared, differences;
} verify_result;

int verify_stores(const char *url_a, const char *url_b, long max_listed, verify_result *out,
                  eie_err *err);

/* `eie-admin verify` with its own arguments; returns the exit status. */
int verify_main(int argc, char **argv);

#endif
