/* eie-admin keys: make, list and revoke the API keys of eie-api. */
#ifndef EIE_ADMIN_KEYS_H
#define EIE_ADMIN_KEYS_H

/* argv[0] is "keys"; returns the exit status. */
int keys_main(int argc, char **argv);

#endif
