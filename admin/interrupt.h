/* SIGINT and SIGTERM for eie-admin's database commands; see interrupt.c. */
#ifndef EIE_ADMIN_INTERRUPT_H
#define EIE_ADMIN_INTERRUPT_H

#include <libpq-fe.h>
#include <stdbool.h>

/* Takes SIGINT and SIGTERM from here on. */
void admin_interrupt_init(void);
/* The connection whose statement a signal cancels (NULL: none, before
 * PQfinish); false once interrupted, when the command should not go on. */
bool admin_interrupt_watch(PGconn *conn);
bool admin_interrupted(void);

#endif
