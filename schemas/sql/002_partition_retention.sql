-- Retention for the day-partitioned history: whole days go at once, which costs
-- a catalog change instead of a DELETE over millions of rows.

-- Drops the day partitions of parent (named parent_YYYYMMDD by
-- eie_ensure_day_partition) whose day is before cutoff. Returns how many.
CREATE FUNCTION eie_drop_day_partitions_before(parent text, cutoff date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent::regclass
          AND c.relname ~ ('^' || parent || '_[0-9]{8}$')
          AND to_date(right(c.relname, 8), 'YYYYMMDD') < cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$;
