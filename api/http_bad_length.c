/* The answer to an unreadable Content-Length; see http_bad_length.h. */
#include "http_bad_length.h"

#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

unsigned http_bad_length_status(const char *fmt)
{
    if (strncmp(fmt, "Too large value of 'Content-Length'", 35) == 0)
        return 413;
    if (strncmp(fmt, "Failed to parse `Content-Length'", 32) == 0)
        return 400;
    return 0;
}

/* Over TLS the bytes go through the connection's GnuTLS session (from the
 * thread serving the connection, between libmicrohttpd's own calls into it):
 * bytes written to the socket itself would be garbage in the TLS stream. */
static void send_past_mhd(struct MHD_Connection *connection, int fd, bool tls, const char *reply,
                          size_t n)
{
    if (tls) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        gnutls_session_t session = info ? (gnutls_session_t)info->tls_session : NULL;
        if (!session || gnutls_record_send(session, reply, n) < 0)
            log_debug("cannot answer a bad Content-Length over TLS");
        else
            gnutls_bye(session, GNUTLS_SHUT_WR); /* close_notify: the answer is whole */
    } else if (send(fd, reply, n, MSG_NOSIGNAL) < 0) {
        log_debug("cannot answer a bad Content-Length: %m");
    }
    shutdown(fd, SHUT_RDWR);
}

void http_bad_length_answer(struct MHD_Connection *connection, int fd, bool tls, unsigned status)
{
    bool too_large = status == 413;
    char body[160], reply[512];
    int body_len = snprintf(body, sizeof body,
                            "{\"error\":{\"status\":%u,\"code\":\"%s\",\"message\":\"%s\"}}", status,
                            too_large ? "payload_too_large" : "bad_request",
                            too_large ? "the body is too large" : "Content-Length is not a number");
    int n = snprintf(reply, sizeof reply,
                     "HTTP/1.1 %u %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     status, too_large ? "Content Too Large" : "Bad Request", body_len, body);
    send_past_mhd(connection, fd, tls, reply, (size_t)n);
}
