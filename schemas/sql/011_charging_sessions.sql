-- Charging sessions: a session starts with a vehicle reading that delivered DC
-- energy (kwh_delivered_dc > 0) and takes in every later such reading of the
-- vehicle until a gap longer than the session gap without one. Readings with
-- no DC inside a session change nothing; a late reading can extend a session,
-- join two, or start one of its own; a repeated reading is stored once in the
-- history, so counts once here.
--
-- Kept by the cold consumers' housekeeping (eie_refresh_sessions, after
-- eie_rollup) from the history, as the hourly summaries are: complete for the
-- readings before charging_session_state.until, which follows the vehicle
-- summaries; the API derives the minutes after it on request for one vehicle.
-- A session's energy follows the attribution rule of 010: its AC is the
-- meters' AC while the vehicle had them to itself, its efficiency that
-- against the DC of the same time.

CREATE TABLE charging_session_state (
    only_row          boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    gap               interval    NOT NULL DEFAULT '10 minutes',
    -- Sessions are complete for the readings before this (NULL: none yet).
    until             timestamptz,
    -- The newest summary change and assignment already taken into account.
    changes_seen      timestamptz NOT NULL DEFAULT '-infinity',
    assignments_seen  timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO charging_session_state DEFAULT VALUES;

CREATE TABLE charging_session (
    vehicle_id     text COLLATE "C" NOT NULL,
    started_at     timestamptz      NOT NULL, -- its first reading with DC
    ended_at       timestamptz      NOT NULL, -- its last
    readings       integer          NOT NULL,
    dc_kwh         double precision NOT NULL,
    soc_from       double precision NOT NULL,
    soc_to         double precision NOT NULL,
    temp_max       double precision NOT NULL,
    temp_avg       double precision NOT NULL,
    -- By the attribution rule, over [started_at - 30 s, ended_at + 30 s): a
    -- reading measures the minute up to its time, and a meter's reading of
    -- the same minute may come a few seconds before or after the vehicle's.
    meters         text[]           NOT NULL,
    ac_kwh         double precision NOT NULL, -- attributable AC
    own_dc_kwh     double precision NOT NULL, -- DC over the same time
    shared_seconds double precision NOT NULL, -- time its meter fed others too
    PRIMARY KEY (vehicle_id, started_at)
);
-- The fleet's sessions by time.
CREATE INDEX charging_session_started_at ON charging_session (started_at);

-- The sessions of one vehicle from its readings in [lo, hi], with their
-- energy. Used to store them and, for the minutes the store has not reached
-- yet, by the API.
CREATE FUNCTION eie_derive_sessions(vehicle text, lo timestamptz, hi timestamptz, gap interval)
RETURNS SETOF charging_session
LANGUAGE sql STABLE AS $$
    WITH r AS (
        SELECT v.ts, v.soc, v.kwh_delivered_dc, v.battery_temp,
               coalesce(v.ts - lag(v.ts) OVER (ORDER BY v.ts) > gap, true) AS starts
        FROM vehicle_history v
        WHERE v.vehicle_id = vehicle AND v.ts >= lo AND v.ts <= hi AND v.kwh_delivered_dc > 0
    ), g AS (
        SELECT r.*, count(*) FILTER (WHERE r.starts) OVER (ORDER BY r.ts) AS n FROM r
    ), s AS (
        SELECT min(ts) AS started_at, max(ts) AS ended_at, count(*)::integer AS readings,
               sum(kwh_delivered_dc) AS dc_kwh, (array_agg(soc ORDER BY ts))[1] AS soc_from,
               (array_agg(soc ORDER BY ts DESC))[1] AS soc_to, max(battery_temp) AS temp_max,
               avg(battery_temp) AS temp_avg
        FROM g GROUP BY n
    )
    SELECT vehicle, s.started_at, s.ended_at, s.readings, s.dc_kwh, s.soc_from, s.soc_to,
           s.temp_max, s.temp_avg,
           coalesce(a.meters, '{}'), coalesce(a.ac, 0), coalesce(a.own_dc, 0), coalesce(a.shared_s, 0)
    FROM s CROSS JOIN LATERAL (
        SELECT array_agg(DISTINCT x.meter_id) FILTER (WHERE x.meter_id IS NOT NULL) AS meters,
               sum(x.ac_kwh) FILTER (WHERE x.meter_id IS NOT NULL AND cardinality(x.others) = 0) AS ac,
               sum(x.dc_kwh) FILTER (WHERE x.meter_id IS NOT NULL AND cardinality(x.others) = 0) AS own_dc,
               sum(extract(epoch FROM x.seg_hi - x.seg_lo)) FILTER (WHERE cardinality(x.others) > 0) AS shared_s
        FROM eie_vehicle_attribution(vehicle, s.started_at - interval '30 seconds',
                                     s.ended_at + interval '30 seconds') x
    ) a
$$;

-- Sessions of the given vehicles again around [lo, hi] each: those that may
-- change (ending within a gap before lo, starting within a gap after hi) are
-- replaced by the sessions their readings and the new ones make.
CREATE FUNCTION eie_resession(vehicles text[], los timestamptz[], his timestamptz[], gap interval)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v record;
    span_lo timestamptz;
    span_hi timestamptz;
    n integer := 0;
BEGIN
    FOR v IN SELECT * FROM unnest(vehicles, los, his) AS x(id, lo, hi) LOOP
        WITH gone AS (
            DELETE FROM charging_session s
            WHERE s.vehicle_id = v.id AND s.ended_at >= v.lo - gap AND s.started_at <= v.hi + gap
            RETURNING s.started_at, s.ended_at
        )
        SELECT least(v.lo, min(started_at)), greatest(v.hi, max(ended_at)) INTO span_lo, span_hi
        FROM gone;
        INSERT INTO charging_session SELECT * FROM eie_derive_sessions(v.id, span_lo, span_hi, gap);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- Sessions' energy again (their bounds unchanged), for those of the vehicles
-- that overlap [lo, hi).
CREATE FUNCTION eie_reattribute_sessions(vehicles text[], lo timestamptz, hi timestamptz)
RETURNS void
LANGUAGE sql AS $$
    UPDATE charging_session s
    SET meters = d.meters, ac_kwh = d.ac_kwh, own_dc_kwh = d.own_dc_kwh,
        shared_seconds = d.shared_seconds
    FROM charging_session o
    CROSS JOIN LATERAL eie_derive_sessions(o.vehicle_id, o.started_at, o.ended_at,
                                           interval '100 years') d
    WHERE o.vehicle_id = ANY (vehicles) AND o.ended_at >= lo - interval '30 seconds'
      AND o.started_at < hi + interval '30 seconds' AND s.vehicle_id = o.vehicle_id AND s.started_at = o.started_at
      AND d.started_at = o.started_at
$$;

-- Brings the sessions up to the vehicle summaries: the hours summarised since
-- the last call (at most max_hours of them), the hours summarised again since
-- (late readings), and the energy of sessions that late meter readings or
-- late assignments touch. With a gap other than the stored one, starts over.
-- Returns the vehicles whose sessions were derived again.
CREATE FUNCTION eie_refresh_sessions(new_gap interval, max_hours integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    st charging_session_state;
    target timestamptz;
    newest_change timestamptz;
    newest_assignment timestamptz;
    ids text[];
    los timestamptz[];
    his timestamptz[];
    done integer := 0;
    r record;
BEGIN
    SELECT * INTO st FROM charging_session_state FOR UPDATE;
    -- Waits for a summarising in progress (eie_rollup holds these rows FOR
    -- UPDATE) and keeps the next one off until this commits: no summary
    -- change can commit with a stamp older than the newest read below.
    PERFORM 1 FROM hourly_rollup FOR SHARE;
    IF st.gap <> new_gap THEN
        TRUNCATE charging_session;
        UPDATE charging_session_state
        SET gap = new_gap, until = NULL, changes_seen = '-infinity', assignments_seen = '-infinity'
        RETURNING * INTO st;
    END IF;
    SELECT max(changed_at) INTO newest_change FROM hourly_summary_change;
    SELECT max(stored_at) INTO newest_assignment FROM vehicle_meter_assignment;

    -- Hours summarised again after late readings, before until: the vehicles
    -- that charged in them (their summaries say which).
    IF st.until IS NOT NULL AND newest_change > st.changes_seen THEN
        SELECT array_agg(x.vehicle_id), array_agg(x.lo), array_agg(x.hi) INTO ids, los, his
        FROM (SELECT h.vehicle_id, min(h.hour) AS lo, max(h.hour) + interval '1 hour' AS hi
              FROM hourly_summary_change c
              JOIN vehicle_hourly h ON h.hour = c.hour
              WHERE c.stream = 'vehicle' AND c.changed_at > st.changes_seen AND c.hour < st.until
                AND h.kwh_delivered_dc > 0
              GROUP BY h.vehicle_id) x;
        IF ids IS NOT NULL THEN
            done := done + eie_resession(ids, los, his, st.gap);
        END IF;
        -- Late meter readings change the energy of the sessions around them.
        FOR r IN SELECT c.hour FROM hourly_summary_change c
                 WHERE c.stream = 'meter' AND c.changed_at > st.changes_seen AND c.hour < st.until LOOP
            PERFORM eie_reattribute_sessions(
                ARRAY(SELECT DISTINCT p.vehicle_id
                      FROM eie_assignment_periods(r.hour, r.hour + interval '1 hour') p),
                r.hour, r.hour + interval '1 hour');
        END LOOP;
    END IF;
    -- Assignments stored late, for a time the sessions already cover: the
    -- sessions of every vehicle on the meters concerned from then on. (A
    -- minute of look-back each time: an assignment's stamp is its
    -- transaction's start, so one committed after the last call may carry an
    -- older stamp than the newest seen then.)
    IF st.until IS NOT NULL AND newest_assignment > st.assignments_seen - interval '1 minute' THEN
        FOR r IN SELECT a.meter_id, a.vehicle_id, a.valid_from FROM vehicle_meter_assignment a
                 WHERE a.stored_at > st.assignments_seen - interval '1 minute'
                   AND a.valid_from < st.until LOOP
            PERFORM eie_reattribute_sessions(
                ARRAY(SELECT DISTINCT p.vehicle_id
                      FROM eie_assignment_periods(r.valid_from, st.until) p
                      WHERE p.meter_id = r.meter_id OR p.vehicle_id = r.vehicle_id
                         OR p.meter_id IN (SELECT q.meter_id FROM eie_assignment_periods(
                                               r.valid_from - interval '1 microsecond', r.valid_from) q
                                           WHERE q.vehicle_id = r.vehicle_id)),
                r.valid_from, st.until);
        END LOOP;
    END IF;

    -- The hours newly summarised.
    SELECT least(summarised_until, coalesce(st.until, summarised_until) + make_interval(hours => max_hours))
    INTO target FROM hourly_rollup WHERE stream = 'vehicle';
    IF target IS NOT NULL AND (st.until IS NULL OR target > st.until) THEN
        SELECT array_agg(x.vehicle_id), array_agg(x.lo), array_agg(x.hi) INTO ids, los, his
        FROM (SELECT h.vehicle_id, min(h.hour) AS lo, max(h.hour) + interval '1 hour' AS hi
              FROM vehicle_hourly h
              WHERE h.hour >= coalesce(st.until, '-infinity') AND h.hour < target
                AND h.kwh_delivered_dc > 0
              GROUP BY h.vehicle_id) x;
        IF ids IS NOT NULL THEN
            done := done + eie_resession(ids, los, his, st.gap);
        END IF;
        st.until := target;
    END IF;
    UPDATE charging_session_state
    SET until = st.until, changes_seen = coalesce(newest_change, changes_seen),
        assignments_seen = greatest(assignments_seen, coalesce(newest_assignment, assignments_seen));
    RETURN done;
END
$$;

-- One vehicle's sessions that overlap [lo, hi): the stored ones, and after
-- the store's end (and for a session still open there) derived from the
-- history on the spot.
CREATE FUNCTION eie_vehicle_sessions(vehicle text, lo timestamptz, hi timestamptz)
RETURNS SETOF charging_session
LANGUAGE plpgsql STABLE AS $$
DECLARE
    st charging_session_state;
    live_from timestamptz;
BEGIN
    SELECT * INTO st FROM charging_session_state;
    -- The last stored session may go on past until: derived again with what follows.
    SELECT least(coalesce(st.until, '-infinity'), coalesce(min(s.started_at), 'infinity'))
    INTO live_from
    FROM charging_session s
    WHERE s.vehicle_id = vehicle AND s.ended_at >= coalesce(st.until, '-infinity') - st.gap;
    RETURN QUERY
        SELECT * FROM charging_session s
        WHERE s.vehicle_id = vehicle AND s.started_at < least(hi, live_from)
          AND s.ended_at >= lo
        UNION ALL
        SELECT * FROM eie_derive_sessions(vehicle, greatest(live_from, lo - st.gap - interval '1 day'),
                                          'infinity', st.gap) d
        WHERE d.started_at >= live_from AND d.started_at < hi AND d.ended_at >= lo;
END
$$;

-- Retention takes the sessions of the days it drops with them.
CREATE OR REPLACE FUNCTION eie_drop_days_before(stream text, cutoff date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    dropped integer := eie_drop_day_partitions_before(stream || '_history', cutoff);
BEGIN
    IF dropped > 0 THEN
        EXECUTE format('DELETE FROM %I WHERE hour < $1', stream || '_hourly')
        USING cutoff::timestamp AT TIME ZONE 'UTC';
        IF stream = 'vehicle' THEN
            DELETE FROM charging_session WHERE started_at < cutoff::timestamp AT TIME ZONE 'UTC';
        END IF;
    END IF;
    RETURN dropped;
END
$$;
