-- Hourly summaries of the history, so that a day of a device's analytics reads
-- about 24 rows instead of 1,440 readings.
--
-- The cold consumers keep them (eie_rollup, from their housekeeping): an hour is
-- summarised once it has been closed for a while; a reading stored later for a
-- summarised hour marks that hour dirty, in the transaction that stores it, and
-- the next housekeeping summarises the hour again. Readers use a summary only
-- for a whole hour before summarised_until that is not dirty, and read the
-- history itself for everything else, so an answer never depends on whether
-- the summaries are up to date.

CREATE TABLE meter_hourly (
    meter_id        text COLLATE "C" NOT NULL,
    hour            timestamptz      NOT NULL,
    readings        integer          NOT NULL,
    kwh_consumed_ac double precision NOT NULL,
    PRIMARY KEY (meter_id, hour) INCLUDE (readings, kwh_consumed_ac)
);

CREATE TABLE vehicle_hourly (
    vehicle_id       text COLLATE "C" NOT NULL,
    hour             timestamptz      NOT NULL,
    readings         integer          NOT NULL,
    kwh_delivered_dc double precision NOT NULL,
    battery_temp_sum double precision NOT NULL,
    PRIMARY KEY (vehicle_id, hour) INCLUDE (readings, kwh_delivered_dc, battery_temp_sum)
);

-- Per stream: the hours before summarised_until are summarised (NULL: none).
-- A batch holds its stream's row FOR SHARE while it stores readings, and
-- eie_rollup holds it FOR UPDATE: a summary never misses a reading committed
-- concurrently, and a batch always sees where the summaries end.
CREATE TABLE hourly_rollup (
    stream           text PRIMARY KEY CHECK (stream IN ('meter', 'vehicle')),
    summarised_until timestamptz
);
INSERT INTO hourly_rollup (stream) VALUES ('meter'), ('vehicle');

CREATE TABLE hourly_rollup_dirty (
    stream text        NOT NULL,
    hour   timestamptz NOT NULL,
    PRIMARY KEY (stream, hour)
);

-- Summarises one stream's hours in [lo, hi) from its history again: all of
-- them, or only those listed in hours. One pass over the readings of [lo, hi)
-- (the history has no index on time alone).
CREATE FUNCTION eie_summarise(stream text, lo timestamptz, hi timestamptz,
                              hours timestamptz[] DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF stream = 'meter' THEN
        DELETE FROM meter_hourly
        WHERE hour >= lo AND hour < hi AND (hours IS NULL OR hour = ANY (hours));
        INSERT INTO meter_hourly (meter_id, hour, readings, kwh_consumed_ac)
        SELECT meter_id, date_trunc('hour', ts, 'UTC') AS h, count(*), sum(kwh_consumed_ac)
        FROM meter_history
        WHERE ts >= lo AND ts < hi AND (hours IS NULL OR date_trunc('hour', ts, 'UTC') = ANY (hours))
        GROUP BY 1, 2;
    ELSE
        DELETE FROM vehicle_hourly
        WHERE hour >= lo AND hour < hi AND (hours IS NULL OR hour = ANY (hours));
        INSERT INTO vehicle_hourly (vehicle_id, hour, readings, kwh_delivered_dc, battery_temp_sum)
        SELECT vehicle_id, date_trunc('hour', ts, 'UTC') AS h, count(*), sum(kwh_delivered_dc),
               sum(battery_temp)
        FROM vehicle_history
        WHERE ts >= lo AND ts < hi AND (hours IS NULL OR date_trunc('hour', ts, 'UTC') = ANY (hours))
        GROUP BY 1, 2;
    END IF;
END
$$;

-- Brings the summaries up to date: dirty hours are summarised again, then the
-- hours that closed at least settle ago and are not summarised yet, at most
-- max_hours of them per stream and call; of both streams, or of only_stream.
-- Returns the hours summarised.
CREATE FUNCTION eie_rollup(settle interval, max_hours integer, only_stream text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    dirty timestamptz[];
    done integer := 0;
    start timestamptz;
    target timestamptz;
BEGIN
    FOR r IN SELECT * FROM hourly_rollup WHERE only_stream IS NULL OR stream = only_stream
             ORDER BY stream FOR UPDATE LOOP
        WITH taken AS (DELETE FROM hourly_rollup_dirty d WHERE d.stream = r.stream RETURNING d.hour)
        SELECT array_agg(hour) INTO dirty FROM taken;
        IF dirty IS NOT NULL THEN
            PERFORM eie_summarise(r.stream, (SELECT min(h) FROM unnest(dirty) h),
                                  (SELECT max(h) FROM unnest(dirty) h) + interval '1 hour', dirty);
            done := done + cardinality(dirty);
        END IF;
        start := r.summarised_until;
        IF start IS NULL THEN
            -- From the first day partition (named parent_YYYYMMDD).
            SELECT min(to_date(right(c.relname, 8), 'YYYYMMDD'))::timestamp AT TIME ZONE 'UTC'
            INTO start
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = (r.stream || '_history')::regclass
              AND c.relname ~ ('^' || r.stream || '_history_[0-9]{8}$');
            CONTINUE WHEN start IS NULL;
        END IF;
        target := least(date_trunc('hour', now() - settle, 'UTC'),
                        start + make_interval(hours => max_hours));
        IF target > start THEN
            PERFORM eie_summarise(r.stream, start, target);
            UPDATE hourly_rollup SET summarised_until = target WHERE stream = r.stream;
            done := done + (extract(epoch FROM target - start) / 3600)::integer;
        END IF;
    END LOOP;
    RETURN done;
END
$$;

-- Retention: the day partitions of one stream's history before cutoff, and
-- with them their hours' summaries, in one statement. Returns the partitions
-- dropped.
CREATE FUNCTION eie_drop_days_before(stream text, cutoff date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    dropped integer := eie_drop_day_partitions_before(stream || '_history', cutoff);
BEGIN
    IF dropped > 0 THEN
        EXECUTE format('DELETE FROM %I WHERE hour < $1', stream || '_hourly')
        USING cutoff::timestamp AT TIME ZONE 'UTC';
    END IF;
    RETURN dropped;
END
$$;
