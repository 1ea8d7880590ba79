/* eie-admin roles: the PostgreSQL roles of least privilege (owner, writer,
 * reader) and their rights in one database. */
#ifndef EIE_ADMIN_ROLES_H
#define EIE_ADMIN_ROLES_H

/* argv[0] is "roles"; returns the exit status. */
int roles_main(int argc, char **argv);

#endif
