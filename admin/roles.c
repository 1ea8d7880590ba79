/* eie-admin roles: the PostgreSQL roles of least privilege (see
 * schemas/sql/014_least_privilege.sql for what each may do), made or brought
 * up to date in one transaction, as a superuser, in the database of the URL:
 *
 *   1. eie_owner, eie_writer and eie_reader exist (LOGIN, nothing more), with
 *      the passwords given, sent as SCRAM verifiers made here (the server
 *      never sees, or logs, a password);
 *   2. the database and what is already in its schema belong to eie_owner
 *      (a database whose migrations ran as another role, before the roles);
 *   3. only the three may connect; the writer may make temporary tables
 *      (its staging tables), the reader not;
 *   4. as eie_owner, the grants of eie_grant_roles() once the migrations
 *      have made it (on a fresh database `eie-admin migrate`, as the owner,
 *      makes it and grants then).
 *
 * Idempotent; roles are the server's, shared by its databases, so a second
 * database of the same server gets the same three roles. */
#include "roles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "pg.h"

static const char *const role_names[] = {"eie_owner", "eie_writer", "eie_reader"};
#define N_ROLES 3

/* Made at once by two callers, one CREATE ROLE waits for the other's commit
 * and then fails on the catalog's unique index: the role is there, as asked. */
static const char create_roles_sql[] =
    "DO $$ DECLARE r text; BEGIN"
    " FOREACH r IN ARRAY ARRAY['eie_owner', 'eie_writer', 'eie_reader'] LOOP"
    "  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN"
    "   BEGIN EXECUTE format('CREATE ROLE %I LOGIN', r);"
    "   EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;"
    "  END IF;"
    "  EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
    "NOBYPASSRLS', r);"
    " END LOOP; END $$";

/* What the current schema holds that eie_owner does not own yet, and the
 * database itself, become eie_owner's. */
static const char own_sql[] =
    "DO $$ DECLARE o record; BEGIN"
    " FOR o IN SELECT c.oid::regclass AS name FROM pg_class c"
    "  WHERE c.relnamespace = current_schema()::regnamespace"
    "  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
    "  AND c.relowner <> 'eie_owner'::regrole LOOP"
    "  EXECUTE format('ALTER TABLE %s OWNER TO eie_owner', o.name);"
    " END LOOP;"
    " FOR o IN SELECT p.oid::regprocedure AS name FROM pg_proc p"
    "  WHERE p.pronamespace = current_schema()::regnamespace"
    "  AND p.proowner <> 'eie_owner'::regrole LOOP"
    "  EXECUTE format('ALTER ROUTINE %s OWNER TO eie_owner', o.name);"
    " END LOOP;"
    " EXECUTE format('ALTER DATABASE %I OWNER TO eie_owner', current_database());"
    " EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());"
    " EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO eie_writer', current_database());"
    " EXECUTE format('GRANT CONNECT ON DATABASE %I TO eie_reader', current_database());"
    " END $$";

static const char grant_sql[] =
    "SET ROLE eie_owner;"
    "DO $$ BEGIN IF to_regprocedure('eie_grant_roles()') IS NOT NULL THEN"
    " PERFORM eie_grant_roles(); END IF; END $$;"
    "RESET ROLE";

/* Sets role's password to password's SCRAM verifier (the server's
 * password_encryption decides the method; scram-sha-256 by default). */
static int set_password(PGconn *conn, const char *role, const char *password, eie_err *err)
{
    char *verifier = PQencryptPasswordConn(conn, password, role, NULL);
    if (!verifier) {
        eie_err_set(err, "making the password verifier of %s: %s", role, PQerrorMessage(conn));
        return -1;
    }
    char *literal = PQescapeLiteral(conn, verifier, strlen(verifier));
    PQfreemem(verifier);
    if (!literal) {
        eie_err_set(err, "quoting the password verifier of %s: %s", role, PQerrorMessage(conn));
        return -1;
    }
    int rc = pg_exec_printf(conn, err, "ALTER ROLE %s PASSWORD %s", role, literal);
    PQfreemem(literal);
    if (rc < 0)
        eie_err_prefix(err, "setting the password of %s", role);
    return rc;
}

static int set_up(PGconn *conn, const char *const passwords[N_ROLES], eie_err *err)
{
    if (pg_exec(conn, "BEGIN", err) < 0)
        return -1;
    int rc = pg_exec(conn, create_roles_sql, err);
    for (int i = 0; rc == 0 && i < N_ROLES; i++)
        if (passwords[i] && *passwords[i])
            rc = set_password(conn, role_names[i], passwords[i], err);
    if (rc == 0 && (rc = pg_exec(conn, own_sql, err)) < 0)
        eie_err_prefix(err, "handing the database to eie_owner");
    if (rc == 0 && (rc = pg_exec(conn, grant_sql, err)) < 0)
        eie_err_prefix(err, "granting the roles their rights");
    if (rc == 0)
        return pg_exec(conn, "COMMIT", err);
    pg_exec(conn, "ROLLBACK", NULL);
    return -1;
}

int roles_main(int argc, char **argv)
{
    const char *url, *passwords[N_ROLES];
    config_option options[] = {
        {"database-url", 'd', "DATABASE_URL", CONFIG_STRING, &url, PG_DEFAULT_URL, 0, 0,
         "PostgreSQL connection URL of a superuser, to the database to set up"},
        {"owner-password", 0, "EIE_OWNER_PASSWORD", CONFIG_STRING, &passwords[0], NULL, 0, 0,
         "password of eie_owner (migrations, eie-replay); unset: left as it is (prefer the "
         "variable: a flag shows in the process list)"},
        {"writer-password", 0, "EIE_WRITER_PASSWORD", CONFIG_STRING, &passwords[1], NULL, 0, 0,
         "password of eie_writer (the consumers); unset: left as it is"},
        {"reader-password", 0, "EIE_READER_PASSWORD", CONFIG_STRING, &passwords[2], NULL, 0, 0,
         "password of eie_reader (eie-api); unset: left as it is"},
    };
    config_spec spec = {
        "eie-admin roles", "[options]",
        "Creates or updates the PostgreSQL roles eie_owner (owns the schema; migrations and\n"
        "eie-replay), eie_writer (the consumers) and eie_reader (eie-api), hands the database\n"
        "to eie_owner and grants each role what it needs, nothing more. Idempotent. Then\n"
        "run `eie-admin migrate` as eie_owner. Needs a superuser's DATABASE_URL.",
        options, sizeof options / sizeof options[0], false, false};
    int first;
    config_result cr = config_parse(&spec, argc, argv, NULL, &first);
    if (cr != CONFIG_OK)
        return cr == CONFIG_HELP_SHOWN ? 0 : 2;
    eie_err err;
    PGconn *conn = pg_connect(url, "eie-admin", &err);
    int rc = conn ? set_up(conn, passwords, &err) : -1;
    PQfinish(conn);
    if (rc < 0) {
        log_error("%s", err.msg);
        return 1;
    }
    char set[40] = "";
    for (int i = 0; i < N_ROLES; i++)
        if (passwords[i] && *passwords[i])
            snprintf(set + strlen(set), sizeof set - strlen(set), " %s", role_names[i]);
    log_info("roles eie_owner, eie_writer and eie_reader are set up; passwords set:%s",
             *set ? set : " none");
    return 0;
}
