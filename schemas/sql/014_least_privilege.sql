-- Least privilege: the programs connect as three roles that `eie-admin roles`
-- creates (a migration cannot: creating roles needs CREATEROLE, which the
-- owner must not have).
--
--   eie_owner   owns every object here; migrations and eie-replay run as it
--   eie_writer  the consumers: reads and writes the stores, the summaries,
--               the sessions and the offsets; no DDL
--   eie_reader  eie-api: reads
--
-- One thing the writer does at run time needs more than writing rows: the
-- cold consumers create day partitions (for late and early readings, and
-- ahead) and drop old ones (retention), and both need ownership of the
-- history tables. Rather than make the writer a member of the owner (which
-- would let it alter or drop any table), the two functions that do it run
-- with their owner's rights (SECURITY DEFINER), take only the two history
-- tables, and only the writer may call them. Dropping whole old days gives
-- the writer nothing it did not have: it may DELETE the history anyway.
--
-- They set no search_path of their own: eie-replay applies these migrations
-- into a schema of its own and calls them there through its search_path.
-- They resolve the parent through the caller's path and then name every
-- object with its schema; a role without CREATE on any schema (the writer)
-- can only put objects into pg_temp, where functions and operators are never
-- looked up, and a table of its own there is refused by the owner check.

-- The history table parent names, resolved by the caller's search_path:
-- its oid when it is a partitioned history table of the current user (the
-- functions' owner, when called by them), else an error.
CREATE FUNCTION eie_history_parent(parent text) RETURNS regclass
LANGUAGE plpgsql STABLE AS $$
DECLARE
    found_oid regclass;
BEGIN
    IF parent IS NULL OR parent NOT IN ('meter_history', 'vehicle_history') THEN
        RAISE EXCEPTION 'not a history table: %', parent USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT c.oid INTO found_oid FROM pg_catalog.pg_class c
    WHERE c.oid = pg_catalog.to_regclass(parent) AND c.relkind = 'p'
      AND c.relowner = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user);
    IF found_oid IS NULL THEN
        RAISE EXCEPTION '% is not a partitioned table owned by %', parent, current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN found_oid;
END
$$;

-- As in 001, with the partition made beside its parent, as the owner.
CREATE OR REPLACE FUNCTION eie_ensure_day_partition(parent text, day date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    parent_oid regclass := eie_history_parent(parent);
    schema text := (SELECT n.nspname FROM pg_catalog.pg_class c
                    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent_oid);
    part text := parent || '_' || pg_catalog.to_char(day, 'YYYYMMDD');
BEGIN
    IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', schema, part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Two consumers may reach a new day at once: see 001.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext(part));
    EXECUTE pg_catalog.format('CREATE TABLE IF NOT EXISTS %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                              schema, part, parent_oid,
                              day::timestamp AT TIME ZONE 'UTC',
                              (day + 1)::timestamp AT TIME ZONE 'UTC');
    RETURN true;
EXCEPTION WHEN duplicate_table OR unique_violation THEN
    RETURN false;
END
$$;

-- As in 002, as the owner.
CREATE OR REPLACE FUNCTION eie_drop_day_partitions_before(parent text, cutoff date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    parent_oid regclass := eie_history_parent(parent);
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT n.nspname, c.relname
        FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = parent_oid
          AND c.relname ~ ('^' || parent || '_[0-9]{8}$')
          AND pg_catalog.to_date(pg_catalog.right(c.relname, 8), 'YYYYMMDD') < cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE pg_catalog.format('DROP TABLE %I.%I', part.nspname, part.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$;

REVOKE EXECUTE ON FUNCTION eie_ensure_day_partition(text, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION eie_drop_day_partitions_before(text, date) FROM PUBLIC;

-- Every grant of the roles, in one place: called here (when the roles
-- exist) and by `eie-admin roles` (as the owner) for a database whose
-- migrations ran before its roles existed. Idempotent. Returns false, having
-- granted nothing, when the roles do not exist (a database served by one
-- role, as before). Objects made later by the owner (new migrations, day
-- partitions, eie-replay's rebuilt tables) get theirs by default privileges.
CREATE FUNCTION eie_grant_roles() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    s text := current_schema();
BEGIN
    IF (SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname IN ('eie_writer', 'eie_reader')) < 2 THEN
        RETURN false;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO eie_writer, eie_reader', s);
    -- The writer: rows of every table (the stores, summaries, sessions,
    -- offsets, the summary changes its triggers note), but not the record
    -- of the migrations; TRUNCATE of the sessions, which a changed session
    -- gap derives again from nothing (eie_refresh_sessions).
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO eie_writer', s);
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %I.eie_schema_migrations FROM eie_writer', s);
    EXECUTE format('GRANT TRUNCATE ON %I.charging_session TO eie_writer', s);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.eie_ensure_day_partition(text, date), '
                   '%I.eie_drop_day_partitions_before(text, date) TO eie_writer', s, s);
    -- The reader: rows, no writes. Its functions are the analytics, which
    -- read only; the writing ones fail on the tables' privileges.
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO eie_reader', s);
    ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO eie_writer;
    ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO eie_reader;
    RETURN true;
END
$$;

SELECT eie_grant_roles();
