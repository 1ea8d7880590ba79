/* Files compiled into every program at build time (see cmake/embed.cmake):
 * the Avro schemas of schemas/avro and the SQL migrations of schemas/sql. */
#ifndef EIE_EMBEDDED_H
#define EIE_EMBEDDED_H

typedef struct eie_embedded_file {
    const char *name; /* file name without directory, e.g. "001_init.sql" */
    const char *text; /* NUL-terminated contents */
} eie_embedded_file;

/* Both tables are sorted by name and end with an entry whose name is NULL. */
extern const eie_embedded_file eie_embedded_avro[];
extern const eie_embedded_file eie_embedded_sql[];

#endif
