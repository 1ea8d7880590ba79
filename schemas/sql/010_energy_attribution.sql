-- Who a meter's energy belongs to. A meter may feed several vehicles at once (a
-- bank of chargers behind one grid meter): its AC then cannot be split between
-- them, because a meter measures only their sum. The rule, used by every
-- analytic figure:
--
--   * A meter's time is cut into segments over which the set of vehicles
--     assigned to it does not change (an assignment holds from its validFrom
--     until the vehicle's next one).
--   * AC measured in a segment with one vehicle assigned is that vehicle's
--     (attributable); AC in a segment with several is the group's (shared) and
--     no single vehicle's; AC in a segment with none is unassigned.
--   * A vehicle's DC is always its own. It is attributable while the vehicle is
--     its meter's only assignee, shared while it is one of several, and
--     unassigned before its first assignment.
--   * A vehicle's efficiency is its attributable DC over its attributable AC;
--     a meter's is the DC of every vehicle it fed, while they were assigned to
--     it, over its AC while any was.
--
-- So a meter's energy is counted once: in one vehicle's attributable figures,
-- or in one group's shared figures, never in two vehicles' at once.

-- The vehicles assigned to a meter: an index lookup, not a scan of every
-- vehicle's history.
CREATE INDEX vehicle_meter_assignment_meter ON vehicle_meter_assignment (meter_id, valid_from);

-- One device's energy over [lo, hi): the hourly summaries for whole clean
-- hours, the history for the minutes at the edges and for dirty hours (see
-- 006). readings counts the readings, temp_sum sums the battery temperatures
-- (vehicles; 0 for meters).
--
-- Small statements rather than one large one: each gets its bounds as
-- parameters, so its cached plan keeps only the day partitions they touch.
CREATE FUNCTION eie_energy(stream text, device text, lo timestamptz, hi timestamptz,
                           OUT kwh double precision, OUT readings bigint,
                           OUT temp_sum double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    until timestamptz;
    r_lo timestamptz;
    r_hi timestamptz;
    k double precision;
    n bigint;
    t double precision;
BEGIN
    kwh := 0; readings := 0; temp_sum := 0;
    IF hi <= lo THEN
        RETURN;
    END IF;
    SELECT summarised_until INTO until FROM hourly_rollup h WHERE h.stream = eie_energy.stream;
    r_lo := date_trunc('hour', lo + interval '1 hour' - interval '1 microsecond', 'UTC');
    r_hi := least(date_trunc('hour', hi, 'UTC'), coalesce(until, '-infinity'));
    IF r_lo >= r_hi THEN
        r_lo := hi;
        r_hi := hi;
    END IF;
    IF stream = 'meter' THEN
        SELECT coalesce(sum(kwh_consumed_ac), 0), count(*) INTO k, n
        FROM meter_history WHERE meter_id = device AND ts >= lo AND ts < r_lo;
        kwh := kwh + k; readings := readings + n;
        SELECT coalesce(sum(kwh_consumed_ac), 0), count(*) INTO k, n
        FROM meter_history WHERE meter_id = device AND ts >= r_hi AND ts < hi;
        kwh := kwh + k; readings := readings + n;
        IF r_lo < r_hi THEN
            SELECT coalesce(sum(h.kwh_consumed_ac), 0), coalesce(sum(h.readings), 0) INTO k, n
            FROM meter_hourly h
            WHERE h.meter_id = device AND h.hour >= r_lo AND h.hour < r_hi
              AND NOT EXISTS (SELECT 1 FROM hourly_rollup_dirty d
                              WHERE d.stream = 'meter' AND d.hour = h.hour);
            kwh := kwh + k; readings := readings + n;
            IF EXISTS (SELECT 1 FROM hourly_rollup_dirty d
                       WHERE d.stream = 'meter' AND d.hour >= r_lo AND d.hour < r_hi) THEN
                SELECT coalesce(sum(m.kwh_consumed_ac), 0), count(m.ts) INTO k, n
                FROM hourly_rollup_dirty d
                JOIN meter_history m ON m.meter_id = device
                 AND m.ts >= d.hour AND m.ts < d.hour + interval '1 hour'
                WHERE d.stream = 'meter' AND d.hour >= r_lo AND d.hour < r_hi;
                kwh := kwh + k; readings := readings + n;
            END IF;
        END IF;
    ELSE
        SELECT coalesce(sum(kwh_delivered_dc), 0), count(*), coalesce(sum(battery_temp), 0)
        INTO k, n, t
        FROM vehicle_history WHERE vehicle_id = device AND ts >= lo AND ts < r_lo;
        kwh := kwh + k; readings := readings + n; temp_sum := temp_sum + t;
        SELECT coalesce(sum(kwh_delivered_dc), 0), count(*), coalesce(sum(battery_temp), 0)
        INTO k, n, t
        FROM vehicle_history WHERE vehicle_id = device AND ts >= r_hi AND ts < hi;
        kwh := kwh + k; readings := readings + n; temp_sum := temp_sum + t;
        IF r_lo < r_hi THEN
            SELECT coalesce(sum(h.kwh_delivered_dc), 0), coalesce(sum(h.readings), 0),
                   coalesce(sum(h.battery_temp_sum), 0)
            INTO k, n, t
            FROM vehicle_hourly h
            WHERE h.vehicle_id = device AND h.hour >= r_lo AND h.hour < r_hi
              AND NOT EXISTS (SELECT 1 FROM hourly_rollup_dirty d
                              WHERE d.stream = 'vehicle' AND d.hour = h.hour);
            kwh := kwh + k; readings := readings + n; temp_sum := temp_sum + t;
            IF EXISTS (SELECT 1 FROM hourly_rollup_dirty d
                       WHERE d.stream = 'vehicle' AND d.hour >= r_lo AND d.hour < r_hi) THEN
                SELECT coalesce(sum(v.kwh_delivered_dc), 0), count(v.ts),
                       coalesce(sum(v.battery_temp), 0)
                INTO k, n, t
                FROM hourly_rollup_dirty d
                JOIN vehicle_history v ON v.vehicle_id = device
                 AND v.ts >= d.hour AND v.ts < d.hour + interval '1 hour'
                WHERE d.stream = 'vehicle' AND d.hour >= r_lo AND d.hour < r_hi;
                kwh := kwh + k; readings := readings + n; temp_sum := temp_sum + t;
            END IF;
        END IF;
    END IF;
END
$$;

-- The assignment periods that overlap [lo, hi), clipped to it: of every meter,
-- or (only_meters) of some, found through the index above.
CREATE FUNCTION eie_assignment_periods(lo timestamptz, hi timestamptz, only_meters text[] DEFAULT NULL)
RETURNS TABLE (meter_id text, vehicle_id text, p_lo timestamptz, p_hi timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT p.meter_id, p.vehicle_id, greatest(p.valid_from, lo),
           least(coalesce(p.valid_to, 'infinity'), hi)
    FROM vehicle_meter_assignment_period p
    WHERE only_meters IS NULL AND p.valid_from < hi AND coalesce(p.valid_to, 'infinity') > lo
    UNION ALL
    SELECT a.meter_id, a.vehicle_id, greatest(a.valid_from, lo),
           least(coalesce(n.valid_from, 'infinity'), hi)
    FROM vehicle_meter_assignment a
    LEFT JOIN LATERAL (SELECT b.valid_from FROM vehicle_meter_assignment b
                       WHERE b.vehicle_id = a.vehicle_id AND b.valid_from > a.valid_from
                       ORDER BY b.valid_from LIMIT 1) n ON true
    WHERE only_meters IS NOT NULL AND a.meter_id = ANY (only_meters) AND a.valid_from < hi
      AND coalesce(n.valid_from, 'infinity') > lo
$$;

-- The segments of the rule above within [lo, hi): per meter, the times over
-- which the same vehicles (at least one) were assigned to it.
CREATE FUNCTION eie_meter_segments(lo timestamptz, hi timestamptz, only_meters text[] DEFAULT NULL)
RETURNS TABLE (meter_id text, seg_lo timestamptz, seg_hi timestamptz, vehicles text[])
LANGUAGE sql STABLE AS $$
    WITH p AS (
        SELECT * FROM eie_assignment_periods(lo, hi, only_meters)
    ), bounds AS (
        SELECT DISTINCT p.meter_id, b.t FROM p CROSS JOIN LATERAL (VALUES (p.p_lo), (p.p_hi)) b(t)
    ), s AS (
        SELECT b.meter_id, b.t AS seg_lo, lead(b.t) OVER (PARTITION BY b.meter_id ORDER BY b.t) AS seg_hi
        FROM bounds b
    )
    SELECT s.meter_id, s.seg_lo, s.seg_hi,
           array_agg(DISTINCT p.vehicle_id ORDER BY p.vehicle_id)
    FROM s JOIN p ON p.meter_id = s.meter_id AND p.p_lo <= s.seg_lo AND p.p_hi >= s.seg_hi
    WHERE s.seg_hi IS NOT NULL
    GROUP BY s.meter_id, s.seg_lo, s.seg_hi
$$;

-- One vehicle's window [lo, hi) cut by the rule: a row per segment of each
-- meter it was assigned to, with the other vehicles assigned then (empty:
-- attributable), and a row with a NULL meter for the time before its first
-- assignment (unassigned).
CREATE FUNCTION eie_vehicle_segments(vehicle text, lo timestamptz, hi timestamptz)
RETURNS TABLE (meter_id text, seg_lo timestamptz, seg_hi timestamptz, others text[])
LANGUAGE sql STABLE AS $$
    SELECT s.meter_id, s.seg_lo, s.seg_hi, array_remove(s.vehicles, vehicle)
    FROM vehicle_meter_assignment_period p
    CROSS JOIN LATERAL eie_meter_segments(greatest(p.valid_from, lo),
                                          least(coalesce(p.valid_to, 'infinity'), hi),
                                          ARRAY[p.meter_id]) s
    WHERE p.vehicle_id = vehicle AND p.valid_from < hi AND coalesce(p.valid_to, 'infinity') > lo
    UNION ALL
    SELECT NULL, lo, least(hi, coalesce(f.first, 'infinity')), '{}'
    FROM (SELECT min(valid_from) AS first FROM vehicle_meter_assignment
          WHERE vehicle_id = vehicle) f
    WHERE coalesce(f.first, 'infinity') > lo
$$;

-- The energy of each of those segments: the meter's AC, the vehicle's DC, and
-- the DC of the others assigned then.
CREATE FUNCTION eie_vehicle_attribution(vehicle text, lo timestamptz, hi timestamptz)
RETURNS TABLE (meter_id text, seg_lo timestamptz, seg_hi timestamptz, others text[],
               ac_kwh double precision, ac_readings bigint, dc_kwh double precision,
               dc_readings bigint, temp_sum double precision, others_dc_kwh double precision)
LANGUAGE sql STABLE AS $$
    SELECT s.meter_id, s.seg_lo, s.seg_hi, s.others,
           coalesce(ac.kwh, 0), coalesce(ac.readings, 0), dc.kwh, dc.readings, dc.temp_sum,
           (SELECT coalesce(sum(o.kwh), 0)
            FROM unnest(s.others) u(id) CROSS JOIN LATERAL eie_energy('vehicle', u.id, s.seg_lo, s.seg_hi) o)
    FROM eie_vehicle_segments(vehicle, lo, hi) s
    CROSS JOIN LATERAL eie_energy('vehicle', vehicle, s.seg_lo, s.seg_hi) dc
    LEFT JOIN LATERAL eie_energy('meter', s.meter_id, s.seg_lo, s.seg_hi) ac ON s.meter_id IS NOT NULL
$$;

-- eie_energy for many ranges at once, set-based: the energy of each range
-- (ids[i], los[i], his[i]), returned with its index i (ranges with none are
-- left out). The same parts as eie_energy (clean summarised hours, the raw
-- minutes around them, dirty hours raw), each one statement for all the
-- ranges through the devices' indexes: what a fleet-wide figure needs,
-- without scanning a day of history.
CREATE FUNCTION eie_ranges_energy(stream text, ids text[], los timestamptz[], his timestamptz[])
RETURNS TABLE (i bigint, kwh double precision, readings bigint, temp_sum double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    until timestamptz;
BEGIN
    SELECT coalesce(h.summarised_until, '-infinity') INTO until
    FROM hourly_rollup h WHERE h.stream = eie_ranges_energy.stream;
    IF stream = 'meter' THEN
        RETURN QUERY
        WITH r AS MATERIALIZED (
            SELECT x.i, x.id COLLATE "C" AS id, x.lo, x.hi,
                   CASE WHEN w.h_lo < w.h_hi THEN w.h_lo ELSE x.hi END AS h_lo,
                   CASE WHEN w.h_lo < w.h_hi THEN w.h_hi ELSE x.hi END AS h_hi
            FROM unnest(ids, los, his) WITH ORDINALITY AS x(id, lo, hi, i)
            CROSS JOIN LATERAL (SELECT date_trunc('hour', x.lo + interval '1 hour' - interval '1 microsecond', 'UTC') AS h_lo,
                                       least(date_trunc('hour', x.hi, 'UTC'), until) AS h_hi) w
            WHERE x.lo < x.hi
        ), dirty AS MATERIALIZED (
            SELECT d.hour FROM hourly_rollup_dirty d WHERE d.stream = 'meter'
        )
        SELECT p.i, sum(p.kwh), sum(p.n)::bigint, 0::double precision FROM (
            SELECT r.i, h.kwh_consumed_ac AS kwh, h.readings::bigint AS n
            FROM r JOIN meter_hourly h ON h.meter_id = r.id AND h.hour >= r.h_lo AND h.hour < r.h_hi
            WHERE h.hour NOT IN (SELECT hour FROM dirty)
            UNION ALL
            SELECT r.i, m.kwh_consumed_ac, 1 FROM r JOIN meter_history m
              ON m.meter_id = r.id AND m.ts >= r.lo AND m.ts < r.h_lo
            UNION ALL
            SELECT r.i, m.kwh_consumed_ac, 1 FROM r JOIN meter_history m
              ON m.meter_id = r.id AND m.ts >= r.h_hi AND m.ts < r.hi
            UNION ALL
            SELECT r.i, m.kwh_consumed_ac, 1
            FROM dirty d JOIN r ON d.hour >= r.h_lo AND d.hour < r.h_hi
            JOIN meter_history m ON m.meter_id = r.id AND m.ts >= d.hour AND m.ts < d.hour + interval '1 hour'
        ) p GROUP BY p.i;
    ELSE
        RETURN QUERY
        WITH r AS MATERIALIZED (
            SELECT x.i, x.id COLLATE "C" AS id, x.lo, x.hi,
                   CASE WHEN w.h_lo < w.h_hi THEN w.h_lo ELSE x.hi END AS h_lo,
                   CASE WHEN w.h_lo < w.h_hi THEN w.h_hi ELSE x.hi END AS h_hi
            FROM unnest(ids, los, his) WITH ORDINALITY AS x(id, lo, hi, i)
            CROSS JOIN LATERAL (SELECT date_trunc('hour', x.lo + interval '1 hour' - interval '1 microsecond', 'UTC') AS h_lo,
                                       least(date_trunc('hour', x.hi, 'UTC'), until) AS h_hi) w
            WHERE x.lo < x.hi
        ), dirty AS MATERIALIZED (
            SELECT d.hour FROM hourly_rollup_dirty d WHERE d.stream = 'vehicle'
        )
        SELECT p.i, sum(p.kwh), sum(p.n)::bigint, sum(p.t) FROM (
            SELECT r.i, h.kwh_delivered_dc AS kwh, h.readings::bigint AS n, h.battery_temp_sum AS t
            FROM r JOIN vehicle_hourly h ON h.vehicle_id = r.id AND h.hour >= r.h_lo AND h.hour < r.h_hi
            WHERE h.hour NOT IN (SELECT hour FROM dirty)
            UNION ALL
            SELECT r.i, v.kwh_delivered_dc, 1, v.battery_temp FROM r JOIN vehicle_history v
              ON v.vehicle_id = r.id AND v.ts >= r.lo AND v.ts < r.h_lo
            UNION ALL
            SELECT r.i, v.kwh_delivered_dc, 1, v.battery_temp FROM r JOIN vehicle_history v
              ON v.vehicle_id = r.id AND v.ts >= r.h_hi AND v.ts < r.hi
            UNION ALL
            SELECT r.i, v.kwh_delivered_dc, 1, v.battery_temp
            FROM dirty d JOIN r ON d.hour >= r.h_lo AND d.hour < r.h_hi
            JOIN vehicle_history v ON v.vehicle_id = r.id AND v.ts >= d.hour AND v.ts < d.hour + interval '1 hour'
        ) p GROUP BY p.i;
    END IF;
END
$$;

-- Every device's figures over [lo, hi) by the rule, for the fleet summary. A
-- row per vehicle (kind 'vehicle'): its attributable AC and DC, its DC while
-- shared, and all its DC (all_kwh). A row per meter (kind 'meter'): its AC
-- while any vehicle was assigned and the DC of the vehicles it fed then, of
-- that the AC and DC and the seconds while it fed several at once, and all
-- its AC. The devices: those of the hot state and of the segments. Each
-- range of history is read once.
CREATE FUNCTION eie_fleet_attribution(lo timestamptz, hi timestamptz)
RETURNS TABLE (kind text, id text, ac_kwh double precision, dc_kwh double precision,
               shared_ac_kwh double precision, shared_dc_kwh double precision,
               shared_seconds double precision, all_kwh double precision)
LANGUAGE sql STABLE AS $$
    WITH seg AS MATERIALIZED (
        SELECT row_number() OVER () AS n, s.meter_id, s.seg_lo, s.seg_hi, s.vehicles,
               cardinality(s.vehicles) AS sharers
        FROM eie_meter_segments(lo, hi) s
    ), seg_ac AS (
        SELECT seg.*, coalesce(e.kwh, 0) AS ac
        FROM seg LEFT JOIN eie_ranges_energy('meter',
            ARRAY(SELECT meter_id FROM seg ORDER BY n), ARRAY(SELECT seg_lo FROM seg ORDER BY n),
            ARRAY(SELECT seg_hi FROM seg ORDER BY n)) e ON e.i = seg.n
    ), seg_v AS MATERIALIZED (
        SELECT row_number() OVER () AS k, seg.n, seg.meter_id, seg.seg_lo, seg.seg_hi, seg.sharers,
               u.vehicle_id
        FROM seg CROSS JOIN unnest(seg.vehicles) u(vehicle_id)
    ), seg_dc AS (
        SELECT seg_v.*, coalesce(e.kwh, 0) AS dc
        FROM seg_v LEFT JOIN eie_ranges_energy('vehicle',
            ARRAY(SELECT vehicle_id FROM seg_v ORDER BY k), ARRAY(SELECT seg_lo FROM seg_v ORDER BY k),
            ARRAY(SELECT seg_hi FROM seg_v ORDER BY k)) e ON e.i = seg_v.k
    ), meter_gaps AS MATERIALIZED (
        -- All of a device's energy is that of its segments and of the gaps
        -- between them (no vehicle assigned): only the gaps, mostly none, are
        -- read again.
        SELECT row_number() OVER () AS n, g.meter_id, g.lo, g.hi FROM (
            SELECT seg.meter_id, coalesce(lag(seg.seg_hi) OVER w, lo) AS lo, seg.seg_lo AS hi
            FROM seg WINDOW w AS (PARTITION BY seg.meter_id ORDER BY seg.seg_lo)
            UNION ALL
            SELECT seg.meter_id, max(seg.seg_hi), hi FROM seg GROUP BY seg.meter_id
            UNION ALL
            SELECT m.meter_id, lo, hi FROM meter_state m
            WHERE NOT EXISTS (SELECT 1 FROM seg WHERE seg.meter_id = m.meter_id)
        ) g WHERE g.lo < g.hi
    ), meter_all AS (
        SELECT x.meter_id, sum(x.kwh) AS kwh FROM (
            SELECT seg_ac.meter_id, seg_ac.ac AS kwh FROM seg_ac
            UNION ALL
            SELECT g.meter_id, coalesce(e.kwh, 0) FROM meter_gaps g LEFT JOIN eie_ranges_energy('meter',
                ARRAY(SELECT meter_id FROM meter_gaps ORDER BY n), ARRAY(SELECT lo FROM meter_gaps ORDER BY n),
                ARRAY(SELECT hi FROM meter_gaps ORDER BY n)) e ON e.i = g.n
        ) x GROUP BY x.meter_id
    ), vehicle_gaps AS MATERIALIZED (
        SELECT row_number() OVER () AS n, g.vehicle_id, g.lo, g.hi FROM (
            SELECT v.vehicle_id, coalesce(lag(v.seg_hi) OVER w, lo) AS lo, v.seg_lo AS hi
            FROM seg_v v WINDOW w AS (PARTITION BY v.vehicle_id ORDER BY v.seg_lo)
            UNION ALL
            SELECT v.vehicle_id, max(v.seg_hi), hi FROM seg_v v GROUP BY v.vehicle_id
            UNION ALL
            SELECT s.vehicle_id, lo, hi FROM vehicle_state s
            WHERE NOT EXISTS (SELECT 1 FROM seg_v WHERE seg_v.vehicle_id = s.vehicle_id)
        ) g WHERE g.lo < g.hi
    ), vehicle_all AS (
        SELECT x.vehicle_id, sum(x.kwh) AS kwh FROM (
            SELECT seg_dc.vehicle_id, seg_dc.dc AS kwh FROM seg_dc
            UNION ALL
            SELECT g.vehicle_id, coalesce(e.kwh, 0) FROM vehicle_gaps g LEFT JOIN eie_ranges_energy('vehicle',
                ARRAY(SELECT vehicle_id FROM vehicle_gaps ORDER BY n), ARRAY(SELECT lo FROM vehicle_gaps ORDER BY n),
                ARRAY(SELECT hi FROM vehicle_gaps ORDER BY n)) e ON e.i = g.n
        ) x GROUP BY x.vehicle_id
    ), vehicles AS (
        SELECT d.vehicle_id,
               coalesce(sum(a.ac) FILTER (WHERE d.sharers = 1), 0) AS ac,
               coalesce(sum(d.dc) FILTER (WHERE d.sharers = 1), 0) AS dc,
               coalesce(sum(d.dc) FILTER (WHERE d.sharers > 1), 0) AS shared_dc
        FROM seg_dc d JOIN seg_ac a ON a.n = d.n
        GROUP BY d.vehicle_id
    ), meter_dc AS (
        SELECT meter_id, sum(dc) AS dc, coalesce(sum(dc) FILTER (WHERE sharers > 1), 0) AS shared_dc
        FROM seg_dc GROUP BY meter_id
    ), meters AS (
        SELECT a.meter_id, sum(a.ac) AS ac,
               coalesce(sum(a.ac) FILTER (WHERE a.sharers > 1), 0) AS shared_ac,
               coalesce(sum(extract(epoch FROM a.seg_hi - a.seg_lo)) FILTER (WHERE a.sharers > 1),
                        0) AS shared_s
        FROM seg_ac a GROUP BY a.meter_id
    )
    SELECT 'vehicle', va.vehicle_id, coalesce(v.ac, 0), coalesce(v.dc, 0), NULL::double precision,
           coalesce(v.shared_dc, 0), NULL::double precision, va.kwh
    FROM vehicle_all va LEFT JOIN vehicles v USING (vehicle_id)
    UNION ALL
    SELECT 'meter', ma.meter_id, coalesce(m.ac, 0), coalesce(d.dc, 0), coalesce(m.shared_ac, 0),
           coalesce(d.shared_dc, 0), coalesce(m.shared_s, 0), ma.kwh
    FROM meter_all ma LEFT JOIN meters m USING (meter_id) LEFT JOIN meter_dc d USING (meter_id)
$$;

-- Replaced by eie_energy and the attribution above.
DROP FUNCTION eie_window_energy(text, timestamptz, timestamptz);
