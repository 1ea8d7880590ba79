-- Efficiency trends and baselines, from the charging sessions (011): a
-- vehicle's efficiency per day is its sessions' attributable DC over their
-- attributable AC (the rule of 010), by the UTC day each session started.
--
-- Its baseline is the median of its daily ratios over the days before (days
-- with at least min_kwh of attributable AC), and the spread around it the
-- median absolute deviation scaled to a standard deviation (x 1.4826): both
-- robust, so that one bad day does not move them. The last 24 hours fall
-- "clearly" below the baseline when their ratio is below it by more than
-- three spreads and by at least 0.02 (two points of efficiency), with a
-- baseline of at least 7 days: a drift a healthy charger does not show, even
-- if the ratio is still above the fleet-wide 0.85.

CREATE FUNCTION eie_daily_efficiency(lo timestamptz, hi timestamptz, only_vehicle text DEFAULT NULL)
RETURNS TABLE (vehicle_id text, day date, sessions bigint, ac_kwh double precision,
               dc_kwh double precision, temp_avg double precision)
LANGUAGE sql STABLE AS $$
    SELECT s.vehicle_id, (s.started_at AT TIME ZONE 'UTC')::date, count(*), sum(s.ac_kwh),
           sum(s.own_dc_kwh), sum(s.temp_avg * s.readings) / sum(s.readings)
    FROM charging_session s
    WHERE s.started_at >= lo AND s.started_at < hi
      AND (only_vehicle IS NULL OR s.vehicle_id = only_vehicle)
    GROUP BY 1, 2
$$;

-- Per vehicle at time t: the last 24 hours' ratio (recent), the baseline and
-- spread of the `days` UTC days before those 24 hours, and whether recent is
-- clearly below the baseline (the rule above).
CREATE FUNCTION eie_efficiency_baselines(t timestamptz, days integer, min_kwh double precision,
                                         only_vehicle text DEFAULT NULL)
RETURNS TABLE (vehicle_id text, recent_ac double precision, recent_dc double precision,
               recent_ratio double precision, baseline double precision,
               spread double precision, baseline_days bigint, below_baseline boolean)
LANGUAGE sql STABLE AS $$
    WITH recent AS (
        SELECT s.vehicle_id, sum(s.ac_kwh) AS ac, sum(s.own_dc_kwh) AS dc
        FROM charging_session s
        WHERE s.started_at >= t - interval '1 day' AND s.started_at < t
          AND (only_vehicle IS NULL OR s.vehicle_id = only_vehicle)
        GROUP BY 1
    ), daily AS (
        SELECT d.vehicle_id, d.dc_kwh / d.ac_kwh AS ratio
        FROM eie_daily_efficiency(date_trunc('day', t - interval '1 day', 'UTC') - make_interval(days => days),
                                  t - interval '1 day', only_vehicle) d
        WHERE d.ac_kwh >= min_kwh AND d.ac_kwh > 0
    ), med AS (
        SELECT daily.vehicle_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY ratio) AS m,
               count(*) AS n
        FROM daily GROUP BY 1
    ), mad AS (
        SELECT med.vehicle_id, med.m, med.n,
               1.4826 * percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(daily.ratio - med.m)) AS spread
        FROM med JOIN daily USING (vehicle_id) GROUP BY med.vehicle_id, med.m, med.n
    )
    SELECT coalesce(r.vehicle_id, mad.vehicle_id), coalesce(r.ac, 0), coalesce(r.dc, 0),
           r.dc / nullif(r.ac, 0), mad.m, mad.spread, coalesce(mad.n, 0),
           coalesce(mad.n >= 7 AND r.ac >= min_kwh AND r.ac > 0
                    AND r.dc / r.ac < mad.m - greatest(3 * mad.spread, 0.02), false)
    FROM recent r FULL JOIN mad USING (vehicle_id)
$$;

-- Battery temperature against the fleet over [lo, hi): each vehicle's average
-- over its charging sessions, and how far above the fleet's median it is in
-- robust standard deviations (median absolute deviation x 1.4826). An
-- outlier is at least 3.5 of them and 5 °C above the median.
CREATE FUNCTION eie_temperature_outliers(lo timestamptz, hi timestamptz)
RETURNS TABLE (vehicle_id text, temp_avg double precision, fleet_median double precision,
               robust_z double precision)
LANGUAGE sql STABLE AS $$
    WITH v AS (
        SELECT s.vehicle_id, sum(s.temp_avg * s.readings) / sum(s.readings) AS temp
        FROM charging_session s WHERE s.started_at >= lo AND s.started_at < hi GROUP BY 1
    ), m AS (
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY temp) AS median FROM v
    ), d AS (
        SELECT m.median,
               1.4826 * percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(v.temp - m.median)) AS spread
        FROM v, m GROUP BY m.median
    )
    SELECT v.vehicle_id, v.temp, d.median, (v.temp - d.median) / nullif(d.spread, 0)
    FROM v, d
    WHERE v.temp >= d.median + 5
      AND (d.spread = 0 OR (v.temp - d.median) / d.spread >= 3.5)
$$;
