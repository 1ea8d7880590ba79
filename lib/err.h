/* The error type of the library: functions that can fail return -1 (or NULL) and
 * describe what failed, with context, in an eie_err the caller owns. Only main()
 * decides whether an error ends the program. */
#ifndef EIE_ERR_H
#define EIE_ERR_H

typedef struct eie_err {
    char msg[512];
} eie_err;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void eie_err_set(eie_err *err, const char *fmt, ...);

/* Prefixes the message already in err with more context: "ctx: old message". */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void eie_err_prefix(eie_err *err, const char *fmt, ...);

#endif
