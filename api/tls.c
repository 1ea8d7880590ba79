/* The API's certificate and key files; see tls.h. */
#include "tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CERT_SETTING "--tls-cert (EIE_TLS_CERT)"
#define KEY_SETTING "--tls-key (EIE_TLS_KEY)"
/* A certificate chain or a key is a few kilobytes; this bounds a wrong path
 * given by mistake (a log file, a device). */
#define PEM_MAX_BYTES (1 << 20)

static char *read_pem(const char *path, const char *setting, eie_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        eie_err_set(err, "%s: cannot read %s: %s", setting, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(PEM_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, PEM_MAX_BYTES + 1, f) : 0;
    int failed = ferror(f);
    fclose(f);
    if (!buf || failed || n > PEM_MAX_BYTES) {
        eie_err_set(err, "%s: cannot read %s: %s", setting, path,
                    !buf ? "out of memory" : failed ? "read error" : "larger than 1 MiB");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (!strstr(buf, "-----BEGIN ")) {
        eie_err_set(err, "%s: %s is not a PEM file", setting, path);
        free(buf);
        return NULL;
    }
    return buf;
}

static void free_key(char *pem)
{
    if (!pem)
        return;
    gnutls_memset(pem, 0, strlen(pem));
    free(pem);
}

/* Each file alone first, so that the error names the one at fault; then
 * the pair, which is what libmicrohttpd will load. */
static int check_pair(const tls_files *t, const char *cert_path, const char *key_path,
                      eie_err *err)
{
    gnutls_datum_t cert = {(unsigned char *)t->cert_pem, (unsigned)strlen(t->cert_pem)};
    gnutls_datum_t key = {(unsigned char *)t->key_pem, (unsigned)strlen(t->key_pem)};
    gnutls_x509_crt_t crt;
    gnutls_x509_privkey_t pk;
    int rc = gnutls_x509_crt_init(&crt);
    if (rc >= 0) {
        rc = gnutls_x509_crt_import(crt, &cert, GNUTLS_X509_FMT_PEM);
        gnutls_x509_crt_deinit(crt);
        if (rc < 0) {
            eie_err_set(err, "%s: %s holds no certificate GnuTLS can read: %s", CERT_SETTING,
                        cert_path, gnutls_strerror(rc));
            return -1;
        }
    }
    if (rc >= 0 && (rc = gnutls_x509_privkey_init(&pk)) >= 0) {
        rc = gnutls_x509_privkey_import(pk, &key, GNUTLS_X509_FMT_PEM);
        gnutls_x509_privkey_deinit(pk);
        if (rc < 0) {
            eie_err_set(err, "%s: %s holds no unencrypted private key GnuTLS can read: %s",
                        KEY_SETTING, key_path, gnutls_strerror(rc));
            return -1;
        }
    }
    gnutls_certificate_credentials_t creds;
    if (rc >= 0 && (rc = gnutls_certificate_allocate_credentials(&creds)) >= 0) {
        rc = gnutls_certificate_set_x509_key_mem(creds, &cert, &key, GNUTLS_X509_FMT_PEM);
        gnutls_certificate_free_credentials(creds);
        if (rc < 0) {
            eie_err_set(err, "%s and %s: the key %s does not go with the certificate %s: %s",
                        CERT_SETTING, KEY_SETTING, key_path, cert_path, gnutls_strerror(rc));
            return -1;
        }
    }
    if (rc < 0) {
        eie_err_set(err, "TLS: %s", gnutls_strerror(rc));
        return -1;
    }
    return 0;
}

int tls_files_load(const char *cert_path, const char *key_path, tls_files *out, eie_err *err)
{
    *out = (tls_files){0};
    if (!(out->cert_pem = read_pem(cert_path, CERT_SETTING, err)) ||
        !(out->key_pem = read_pem(key_path, KEY_SETTING, err)) ||
        check_pair(out, cert_path, key_path, err) < 0) {
        tls_files_free(out);
        return -1;
    }
    return 0;
}

void tls_files_free(tls_files *t)
{
    free(t->cert_pem);
    free_key(t->key_pem);
    *t = (tls_files){0};
}
