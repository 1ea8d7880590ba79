-- The sessions' pass over late assignments goes at most max_hours of their
-- time per call, and on at the next (see eie_refresh_sessions).
ALTER TABLE charging_session_state
    ADD COLUMN assignments_redo_from timestamptz,
    ADD COLUMN assignments_redo_since timestamptz;

-- Brings the sessions up to the vehicle summaries (as 018).
CREATE OR REPLACE FUNCTION eie_refresh_sessions(new_gap interval, max_hours integer) RETURNS integer
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
    look_back timestamptz;
    fresh_lo timestamptz;
    chunk_hi timestamptz;
BEGIN
    SELECT * INTO st FROM charging_session_state FOR UPDATE;
    -- Waits for a summarising in progress (eie_rollup holds these rows FOR
    -- UPDATE) and keeps the next one off until this commits: no summary
    -- change can commit with a stamp older than the newest read below.
    PERFORM 1 FROM hourly_rollup FOR SHARE;
    IF st.gap <> new_gap THEN
        TRUNCATE charging_session;
        UPDATE charging_session_state
        SET gap = new_gap, until = NULL, changes_seen = '-infinity', assignments_seen = '-infinity',
            assignments_read_at = '-infinity', assignments_redo_from = NULL,
            assignments_redo_since = NULL
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
    -- and those the vehicles left), in one pass. A minute of look-back: an
    -- assignment's stamp is its transaction's start, so one committed after
    -- the last call may carry an older stamp than the newest seen then. But
    -- not a minute before the newest stamp for ever: one stamped a minute
    -- before the last call had committed by then, and was taken in (018).
    -- The pass goes at most max_hours of the assignments' time per call, as
    -- the hours newly summarised do: after a backfill of a fleet's
    -- assignments days back, one pass over days held the cold sink's batches
    -- off for minutes. assignments_redo_from is where the next call goes on,
    -- with the assignments stored since assignments_redo_since; one stored
    -- meanwhile for an earlier time takes the pass back there.
    look_back := greatest(st.assignments_seen, st.assignments_read_at) - interval '1 minute';
    IF st.until IS NOT NULL AND newest_assignment > look_back THEN
        SELECT min(a.valid_from) INTO fresh_lo
        FROM vehicle_meter_assignment a
        WHERE a.stored_at > look_back AND a.valid_from < st.until;
        IF fresh_lo IS NOT NULL THEN
            st.assignments_redo_since := least(coalesce(st.assignments_redo_since, look_back), look_back);
            st.assignments_redo_from := least(coalesce(st.assignments_redo_from, fresh_lo), fresh_lo);
        END IF;
    END IF;
    IF st.assignments_redo_from IS NOT NULL THEN
        lo := st.assignments_redo_from;
        chunk_hi := least(st.until, lo + make_interval(hours => max_hours));
        SELECT array_agg(DISTINCT a.vehicle_id), array_agg(DISTINCT a.meter_id)
        INTO ids, meters
        FROM vehicle_meter_assignment a
        WHERE a.stored_at > st.assignments_redo_since AND a.valid_from < st.until;
        IF ids IS NOT NULL THEN
            meters := meters || ARRAY(SELECT DISTINCT p.meter_id FROM eie_assignment_periods(lo, chunk_hi) p
                                      WHERE p.vehicle_id = ANY (ids));
            PERFORM eie_reattribute_sessions(
                ids || ARRAY(SELECT DISTINCT p.vehicle_id FROM eie_assignment_periods(lo, chunk_hi, meters) p),
                lo, chunk_hi);
        END IF;
        IF chunk_hi >= st.until THEN
            st.assignments_redo_from := NULL;
            st.assignments_redo_since := NULL;
        ELSE
            st.assignments_redo_from := chunk_hi;
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
        assignments_seen = greatest(assignments_seen, coalesce(newest_assignment, assignments_seen)),
        assignments_read_at = now(), assignments_redo_from = st.assignments_redo_from,
        assignments_redo_since = st.assignments_redo_since;
    RETURN done;
END
$$;
