/* eie-api's TLS certificate and key: read from their PEM files once at start
 * and checked with GnuTLS (libmicrohttpd's TLS library, as Debian builds it),
 * so that a file that is missing, unreadable, not PEM, or a key that does not
 * belong to the certificate is refused at start with the setting named,
 * rather than by libmicrohttpd's daemon failing to start with no reason. */
#ifndef EIE_API_TLS_H
#define EIE_API_TLS_H

#include "err.h"

typedef struct tls_files {
    char *cert_pem; /* the certificate chain, server first, NUL-terminated */
    char *key_pem;  /* the private key (unencrypted), NUL-terminated */
} tls_files;

/* Reads and checks both files into out (freed by tls_files_free). On failure
 * err names the setting at fault: --tls-cert (EIE_TLS_CERT) or --tls-key
 * (EIE_TLS_KEY). */
int tls_files_load(const char *cert_path, const char *key_path, tls_files *out, eie_err *err);
/* Wipes the key from memory and frees both. */
void tls_files_free(tls_files *t);

#endif
