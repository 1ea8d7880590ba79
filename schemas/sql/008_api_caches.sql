-- What the API's in-memory caches need to notice changes without scanning.
--
-- The hourly summaries: each summarised hour's row here is stamped whenever
-- that hour's summaries are written or deleted (re-summarised after late
-- readings, dropped by retention), so the API reloads exactly the hours that
-- changed. The stamp is only ever compared for equality.
CREATE TABLE hourly_summary_change (
    stream     text        NOT NULL,
    hour       timestamptz NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (stream, hour)
);
-- The newest stamp tells the API, at each query, whether its cache is as
-- current as the database.
CREATE INDEX hourly_summary_change_changed_at ON hourly_summary_change (changed_at);

CREATE FUNCTION eie_note_summary_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hourly_summary_change (stream, hour, changed_at)
    SELECT TG_ARGV[0], hour, clock_timestamp() FROM (SELECT DISTINCT hour FROM changed) touched
    ON CONFLICT (stream, hour) DO UPDATE SET changed_at = EXCLUDED.changed_at;
    RETURN NULL;
END
$$;

-- The API loads one hour of summaries at a time (and eie_summarise deletes
-- by hour): without these, each would read every summary row.
CREATE INDEX meter_hourly_hour ON meter_hourly (hour);
CREATE INDEX vehicle_hourly_hour ON vehicle_hourly (hour);

-- Statement triggers with transition tables: one row per hour touched, not
-- per summary row.
CREATE TRIGGER meter_hourly_inserted AFTER INSERT ON meter_hourly
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION eie_note_summary_change('meter');
CREATE TRIGGER meter_hourly_deleted AFTER DELETE ON meter_hourly
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION eie_note_summary_change('meter');
CREATE TRIGGER vehicle_hourly_inserted AFTER INSERT ON vehicle_hourly
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION eie_note_summary_change('vehicle');
CREATE TRIGGER vehicle_hourly_deleted AFTER DELETE ON vehicle_hourly
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION eie_note_summary_change('vehicle');

-- The assignment history is only ever inserted into: when each row was stored,
-- indexed, lets the API pick up new assignments (including ones that arrive
-- late, for an earlier time) without reading the whole history, and tell
-- whether it has the newest.
ALTER TABLE vehicle_meter_assignment ADD COLUMN stored_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX vehicle_meter_assignment_stored_at ON vehicle_meter_assignment (stored_at);
