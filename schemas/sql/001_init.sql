-- The first schema: cold history, hot state, assignments and the consumers' offsets.
-- Applied once by `eie-admin migrate` (and by the consumers at start), inside a
-- transaction, and recorded in eie_schema_migrations.
--
-- Device ids are COLLATE "C": they are identifiers, not words, so they compare
-- byte by byte, which keeps primary-key maintenance (most of the cost of
-- ingesting) cheap whatever the database's locale.

-- Cold history: one table per stream, range-partitioned by day (UTC) on the
-- reading's own time, so old days are dropped whole and a time-range query
-- touches only its days. The primary key stores a reading repeated by an
-- upstream system (same device, same time) once, and carries the measured
-- values too (INCLUDE): a device's readings lie scattered over the heap in
-- arrival order, so the analytics read them from the index alone (an
-- index-only scan touches a few pages where the heap would need thousands).
CREATE TABLE meter_history (
    meter_id        text COLLATE "C" NOT NULL,
    ts              timestamptz      NOT NULL,
    kwh_consumed_ac double precision NOT NULL,
    voltage         double precision NOT NULL,
    PRIMARY KEY (meter_id, ts) INCLUDE (kwh_consumed_ac)
) PARTITION BY RANGE (ts);

CREATE TABLE vehicle_history (
    vehicle_id       text COLLATE "C" NOT NULL,
    ts               timestamptz      NOT NULL,
    soc              double precision NOT NULL,
    kwh_delivered_dc double precision NOT NULL,
    battery_temp     double precision NOT NULL,
    PRIMARY KEY (vehicle_id, ts) INCLUDE (soc, kwh_delivered_dc, battery_temp)
) PARTITION BY RANGE (ts);

-- Creates the day partition of parent that holds day, unless it exists. Returns
-- whether it created one. Consumers call it for every day a batch touches, so
-- late and early readings never fail a batch.
CREATE FUNCTION eie_ensure_day_partition(parent text, day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := parent || '_' || to_char(day, 'YYYYMMDD');
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Two consumers may reach a new day at once: the lock makes the second wait,
    -- and the handler turns its then-redundant CREATE into "already there" (its
    -- statement's catalog view may predate the first one's commit).
    PERFORM pg_advisory_xact_lock(hashtext(part));
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                   part, parent,
                   day::timestamp AT TIME ZONE 'UTC',
                   (day + 1)::timestamp AT TIME ZONE 'UTC');
    RETURN true;
EXCEPTION WHEN duplicate_table OR unique_violation THEN
    RETURN false;
END
$$;

-- Hot state: the latest reading of each device by event time.
CREATE TABLE meter_state (
    meter_id        text COLLATE "C" PRIMARY KEY,
    ts              timestamptz      NOT NULL,
    kwh_consumed_ac double precision NOT NULL,
    voltage         double precision NOT NULL,
    updated_at      timestamptz      NOT NULL DEFAULT now()
);

CREATE TABLE vehicle_state (
    vehicle_id       text COLLATE "C" PRIMARY KEY,
    ts               timestamptz      NOT NULL,
    soc              double precision NOT NULL,
    kwh_delivered_dc double precision NOT NULL,
    battery_temp     double precision NOT NULL,
    updated_at       timestamptz      NOT NULL DEFAULT now()
);

-- Which meter a vehicle charges through, with its history: an assignment holds
-- from valid_from until the vehicle's next one.
CREATE TABLE vehicle_meter_assignment (
    vehicle_id text COLLATE "C" NOT NULL,
    valid_from timestamptz NOT NULL,
    meter_id   text COLLATE "C" NOT NULL,
    PRIMARY KEY (vehicle_id, valid_from)
);

CREATE VIEW vehicle_meter_assignment_period AS
SELECT vehicle_id, meter_id, valid_from,
       lead(valid_from) OVER (PARTITION BY vehicle_id ORDER BY valid_from) AS valid_to
FROM vehicle_meter_assignment;

-- The next Kafka offset each consumer group will read, per partition, written in
-- the same transaction as the rows it covers: PostgreSQL, not Kafka, is the truth
-- about what has been stored.
CREATE TABLE sink_offsets (
    consumer_group text   NOT NULL,
    topic          text   NOT NULL,
    partition      int    NOT NULL,
    next_offset    bigint NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
