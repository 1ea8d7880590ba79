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

-- The sessions that the readings of each vehicle ids[i] in [los[i], his[i]]
-- make, with their energy: what the store keeps, and, for the minutes the
-- store has not reached yet, what the API derives. Set-based, a few
-- statements for any number of vehicles: the islands of readings with DC, the
-- segments of the meters they were on (010), and the energy of the
-- attributable pieces through eie_ranges_energy.
CREATE FUNCTION eie_derive_sessions(ids text[], los timestamptz[], his timestamptz[], gap interval)
RETURNS SETOF charging_session
LANGUAGE plpgsql STABLE AS $$
DECLARE
    meters text[];
    w_lo timestamptz;
    w_hi timestamptz;
BEGIN
    -- The meters the vehicles were on over all the spans, and those spans'
    -- bounds widened by the 30 s the sessions' energy takes in.
    SELECT min(x.lo) - interval '30 seconds', max(x.hi) + interval '30 seconds'
    INTO w_lo, w_hi FROM unnest(los, his) AS x(lo, hi);
    SELECT array_agg(DISTINCT p.meter_id) INTO meters
    FROM vehicle_meter_assignment_period p
    WHERE p.vehicle_id = ANY (ids) AND p.valid_from < w_hi AND coalesce(p.valid_to, 'infinity') > w_lo;
    RETURN QUERY
    -- Each span on its own (j): spans of one vehicle never join.
    WITH sp AS (
        SELECT x.j, x.id COLLATE "C" AS id, x.lo, x.hi
        FROM unnest(ids, los, his) WITH ORDINALITY AS x(id, lo, hi, j)
    ), r AS (
        SELECT sp.j, v.vehicle_id, v.ts, v.soc, v.kwh_delivered_dc, v.battery_temp,
               coalesce(v.ts - lag(v.ts) OVER (PARTITION BY sp.j ORDER BY v.ts) > gap, true) AS starts
        FROM sp JOIN vehicle_history v
          ON v.vehicle_id = sp.id AND v.ts >= sp.lo AND v.ts <= sp.hi AND v.kwh_delivered_dc > 0
    ), g AS (
        SELECT r.*, count(*) FILTER (WHERE r.starts) OVER (PARTITION BY r.j ORDER BY r.ts) AS n
        FROM r
    ), s AS MATERIALIZED (
        SELECT row_number() OVER () AS k, g.vehicle_id, min(g.ts) AS started_at, max(g.ts) AS ended_at,
               count(*)::integer AS readings, sum(g.kwh_delivered_dc) AS dc_kwh,
               (array_agg(g.soc ORDER BY g.ts))[1] AS soc_from,
               (array_agg(g.soc ORDER BY g.ts DESC))[1] AS soc_to,
               max(g.battery_temp) AS temp_max, avg(g.battery_temp) AS temp_avg
        FROM g GROUP BY g.j, g.vehicle_id, g.n
    ), seg AS MATERIALIZED (
        SELECT m.meter_id, m.seg_lo, m.seg_hi, u.vehicle_id, cardinality(m.vehicles) AS sharers
        FROM eie_meter_segments(w_lo, w_hi, coalesce(meters, '{}')) m
        CROSS JOIN unnest(m.vehicles) u(vehicle_id)
    ), piece AS MATERIALIZED (
        -- A session's time on one segment of one meter, [started_at - 30 s,
        -- ended_at + 30 s): a reading measures the minute up to its time, and
        -- a meter's reading of that minute may come a few seconds apart.
        SELECT s.k, seg.meter_id, seg.vehicle_id, seg.sharers,
               greatest(s.started_at - interval '30 seconds', seg.seg_lo) AS lo,
               least(s.ended_at + interval '30 seconds', seg.seg_hi) AS hi
        FROM s JOIN seg ON seg.vehicle_id = s.vehicle_id
         AND seg.seg_lo < s.ended_at + interval '30 seconds'
         AND seg.seg_hi > s.started_at - interval '30 seconds'
    ), own AS MATERIALIZED (
        SELECT row_number() OVER () AS n, piece.k, piece.meter_id, piece.vehicle_id, piece.lo, piece.hi
        FROM piece WHERE piece.sharers = 1
    ), own_ac AS (
        SELECT e.i, e.kwh FROM eie_ranges_energy('meter',
            ARRAY(SELECT meter_id FROM own ORDER BY n), ARRAY(SELECT lo FROM own ORDER BY n),
            ARRAY(SELECT hi FROM own ORDER BY n)) e
    ), own_dc AS (
        SELECT e.i, e.kwh FROM eie_ranges_energy('vehicle',
            ARRAY(SELECT vehicle_id FROM own ORDER BY n), ARRAY(SELECT lo FROM own ORDER BY n),
            ARRAY(SELECT hi FROM own ORDER BY n)) e
    ), energy AS (
        SELECT piece.k, array_agg(DISTINCT piece.meter_id) AS meters,
               coalesce(sum(own_ac.kwh), 0) AS ac, coalesce(sum(own_dc.kwh), 0) AS own_dc,
               coalesce(sum(extract(epoch FROM piece.hi - piece.lo)) FILTER (WHERE piece.sharers > 1), 0)::float8
                   AS shared_s
        FROM piece LEFT JOIN own ON own.k = piece.k AND own.lo = piece.lo AND own.meter_id = piece.meter_id
        LEFT JOIN own_ac ON own_ac.i = own.n LEFT JOIN own_dc ON own_dc.i = own.n
        GROUP BY piece.k
    )
    SELECT s.vehicle_id, s.started_at, s.ended_at, s.readings, s.dc_kwh, s.soc_from, s.soc_to,
           s.temp_max, s.temp_avg, coalesce(e.meters, '{}'), coalesce(e.ac, 0),
           coalesce(e.own_dc, 0), coalesce(e.shared_s, 0)
    FROM s LEFT JOIN energy e ON e.k = s.k;
END
$$;

-- Sessions of the given vehicles again around [lo, hi] each: those that may
-- change (ending within a gap before lo, starting within a gap after hi) are
-- replaced by the sessions their readings and the new ones make.
CREATE FUNCTION eie_resession(vehicles text[], los timestamptz[], his timestamptz[], gap interval)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    ids text[];
    span_los timestamptz[];
    span_his timestamptz[];
BEGIN
    WITH x AS (
        SELECT v.id COLLATE "C" AS id, v.lo, v.hi FROM unnest(vehicles, los, his) AS v(id, lo, hi)
    ), gone AS (
        DELETE FROM charging_session s USING x
        WHERE s.vehicle_id = x.id AND s.ended_at >= x.lo - gap AND s.started_at <= x.hi + gap
        RETURNING s.vehicle_id, s.started_at, s.ended_at
    )
    SELECT array_agg(x.id), array_agg(least(x.lo, g.lo)), array_agg(greatest(x.hi, g.hi))
    INTO ids, span_los, span_his
    FROM x LEFT JOIN (SELECT vehicle_id, min(started_at) AS lo, max(ended_at) AS hi
                      FROM gone GROUP BY vehicle_id) g ON g.vehicle_id = x.id;
    INSERT INTO charging_session SELECT * FROM eie_derive_sessions(ids, span_los, span_his, gap);
    RETURN coalesce(cardinality(ids), 0);
END
$$;

-- Sessions' energy again (their bounds unchanged), for those of the vehicles
-- that overlap [lo, hi).
CREATE FUNCTION eie_reattribute_sessions(vehicles text[], lo timestamptz, hi timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ids text[];
    starts timestamptz[];
    ends timestamptz[];
BEGIN
    SELECT array_agg(o.vehicle_id), array_agg(o.started_at), array_agg(o.ended_at)
    INTO ids, starts, ends
    FROM charging_session o
    WHERE o.vehicle_id = ANY (vehicles) AND o.ended_at >= lo - interval '30 seconds'
      AND o.started_at < hi + interval '30 seconds';
    IF ids IS NULL THEN
        RETURN;
    END IF;
    -- Each session alone (a gap longer than it), so it comes back whole.
    UPDATE charging_session s
    SET meters = d.meters, ac_kwh = d.ac_kwh, own_dc_kwh = d.own_dc_kwh,
        shared_seconds = d.shared_seconds
    FROM eie_derive_sessions(ids, starts, ends, interval '100 years') d
    WHERE s.vehicle_id = d.vehicle_id AND s.started_at = d.started_at;
END
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
    lo timestamptz;
    hi timestamptz;
    meters text[];
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
        -- Late meter readings change the energy of the sessions around them:
        -- those of the vehicles assigned in those hours, in one pass.
        SELECT min(c.hour), max(c.hour) + interval '1 hour' INTO lo, hi
        FROM hourly_summary_change c
        WHERE c.stream = 'meter' AND c.changed_at > st.changes_seen AND c.hour < st.until;
        IF lo IS NOT NULL THEN
            PERFORM eie_reattribute_sessions(
                ARRAY(SELECT DISTINCT p.vehicle_id FROM eie_assignment_periods(lo, hi) p), lo, hi);
        END IF;
    END IF;
    -- Assignments stored late, for a time the sessions already cover: the
    -- sessions, from the earliest such assignment on, of the vehicles
    -- assigned and of every vehicle on the meters concerned (the new ones
    -- and those the vehicles left), in one pass. (A minute of look-back each
    -- time: an assignment's stamp is its transaction's start, so one
    -- committed after the last call may carry an older stamp than the newest
    -- seen then.)
    IF st.until IS NOT NULL AND newest_assignment > st.assignments_seen - interval '1 minute' THEN
        SELECT min(a.valid_from), array_agg(DISTINCT a.vehicle_id),
               array_agg(DISTINCT a.meter_id)
        INTO lo, ids, meters
        FROM vehicle_meter_assignment a
        WHERE a.stored_at > st.assignments_seen - interval '1 minute' AND a.valid_from < st.until;
        IF lo IS NOT NULL THEN
            meters := meters || ARRAY(SELECT DISTINCT p.meter_id FROM eie_assignment_periods(lo, st.until) p
                                      WHERE p.vehicle_id = ANY (ids));
            PERFORM eie_reattribute_sessions(
                ids || ARRAY(SELECT DISTINCT p.vehicle_id FROM eie_assignment_periods(lo, st.until, meters) p),
                lo, st.until);
        END IF;
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
          AND s.ended_at >= lo;
    -- Most vehicles have not charged since: no need to derive anything.
    IF live_from < hi AND EXISTS (SELECT 1 FROM vehicle_history v WHERE v.vehicle_id = vehicle
                                  AND v.ts >= live_from AND v.kwh_delivered_dc > 0) THEN
        RETURN QUERY
            SELECT * FROM eie_derive_sessions(ARRAY[vehicle],
                                              ARRAY[greatest(live_from, lo - st.gap - interval '1 day')],
                                              ARRAY['infinity'::timestamptz], st.gap) d
            WHERE d.started_at >= live_from AND d.started_at < hi AND d.ended_at >= lo;
    END IF;
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
