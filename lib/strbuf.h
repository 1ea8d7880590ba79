/* A growable byte buffer, NUL-terminated for convenience. Used to build COPY data,
 * SQL text and JSON; the owner frees it with strbuf_free. Allocation failure
 * aborts: these buffers are small next to the process, and a half-built row is
 * worse than a crash the supervisor restarts. */
#ifndef EIE_STRBUF_H
#define EIE_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct strbuf {
    char *data;
    size_t len;
    size_t cap;
} strbuf;

#define STRBUF_INIT {0, 0, 0}

void strbuf_reserve(strbuf *sb, size_t extra);
void strbuf_append(strbuf *sb, const void *data, size_t len);
void strbuf_puts(strbuf *sb, const char *s);
void strbuf_putc(strbuf *sb, char c);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void strbuf_printf(strbuf *sb, const char *fmt, ...);
/* The same with a va_list (which it leaves for the caller to va_end). The
 * attribute lets the compiler check the callers that forward their format. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
void strbuf_vprintf(strbuf *sb, const char *fmt, va_list ap);
void strbuf_reset(strbuf *sb);
void strbuf_free(strbuf *sb);

#endif
