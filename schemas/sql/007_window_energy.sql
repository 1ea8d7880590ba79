-- The energy behind a vehicle's performance report over [lo, hi): AC drawn by
-- the meters it was assigned to, each only while it was, and DC delivered to
-- its battery, with the readings counted and the battery temperatures summed.
--
-- As a function of small statements rather than one large one: each statement
-- gets its bounds as parameters, so its cached plan keeps only the day
-- partitions those bounds touch, where one statement over every case spent
-- most of its time starting up plan nodes for partitions it never read
-- (perf on a backend under bench/api.sh).
CREATE FUNCTION eie_window_energy(vehicle text, lo timestamptz, hi timestamptz,
                                  OUT ac_kwh double precision, OUT ac_readings bigint,
                                  OUT dc_kwh double precision, OUT dc_readings bigint,
                                  OUT temp_sum double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    meter_until timestamptz;
    vehicle_until timestamptz;
    period record;
    r_lo timestamptz;
    r_hi timestamptz;
    kwh double precision;
    n bigint;
    temp double precision;
BEGIN
    SELECT max(summarised_until) FILTER (WHERE stream = 'meter'),
           max(summarised_until) FILTER (WHERE stream = 'vehicle')
    INTO meter_until, vehicle_until FROM hourly_rollup;
    ac_kwh := 0; ac_readings := 0; dc_kwh := 0; dc_readings := 0; temp_sum := 0;

    -- Whole summarised hours [r_lo, r_hi) come from the summaries (unless
    -- dirty), the minutes before and after from the history.
    r_lo := date_trunc('hour', lo + interval '1 hour' - interval '1 microsecond', 'UTC');
    r_hi := least(date_trunc('hour', hi, 'UTC'), coalesce(vehicle_until, '-infinity'));
    IF r_lo >= r_hi THEN
        r_lo := hi;
        r_hi := hi;
    END IF;
    SELECT coalesce(sum(kwh_delivered_dc), 0), count(*), coalesce(sum(battery_temp), 0)
    INTO kwh, n, temp
    FROM vehicle_history WHERE vehicle_id = vehicle AND ts >= lo AND ts < r_lo;
    dc_kwh := dc_kwh + kwh; dc_readings := dc_readings + n; temp_sum := temp_sum + temp;
    SELECT coalesce(sum(kwh_delivered_dc), 0), count(*), coalesce(sum(battery_temp), 0)
    INTO kwh, n, temp
    FROM vehicle_history WHERE vehicle_id = vehicle AND ts >= r_hi AND ts < hi;
    dc_kwh := dc_kwh + kwh; dc_readings := dc_readings + n; temp_sum := temp_sum + temp;
    IF r_lo < r_hi THEN
        SELECT coalesce(sum(h.kwh_delivered_dc), 0), coalesce(sum(h.readings), 0),
               coalesce(sum(h.battery_temp_sum), 0)
        INTO kwh, n, temp
        FROM vehicle_hourly h
        WHERE h.vehicle_id = vehicle AND h.hour >= r_lo AND h.hour < r_hi
          AND NOT EXISTS (SELECT 1 FROM hourly_rollup_dirty d
                          WHERE d.stream = 'vehicle' AND d.hour = h.hour);
        dc_kwh := dc_kwh + kwh; dc_readings := dc_readings + n; temp_sum := temp_sum + temp;
        IF EXISTS (SELECT 1 FROM hourly_rollup_dirty d
                   WHERE d.stream = 'vehicle' AND d.hour >= r_lo AND d.hour < r_hi) THEN
            SELECT coalesce(sum(v.kwh_delivered_dc), 0), count(v.ts), coalesce(sum(v.battery_temp), 0)
            INTO kwh, n, temp
            FROM hourly_rollup_dirty d
            JOIN vehicle_history v ON v.vehicle_id = vehicle
             AND v.ts >= d.hour AND v.ts < d.hour + interval '1 hour'
            WHERE d.stream = 'vehicle' AND d.hour >= r_lo AND d.hour < r_hi;
            dc_kwh := dc_kwh + kwh; dc_readings := dc_readings + n; temp_sum := temp_sum + temp;
        END IF;
    END IF;

    FOR period IN
        SELECT a.meter_id, greatest(a.valid_from, lo) AS p_lo,
               least(coalesce(a.valid_to, 'infinity'), hi) AS p_hi
        FROM vehicle_meter_assignment_period a
        WHERE a.vehicle_id = vehicle AND a.valid_from < hi
          AND coalesce(a.valid_to, 'infinity') > lo
    LOOP
        r_lo := date_trunc('hour', period.p_lo + interval '1 hour' - interval '1 microsecond', 'UTC');
        r_hi := least(date_trunc('hour', period.p_hi, 'UTC'), coalesce(meter_until, '-infinity'));
        IF r_lo >= r_hi THEN
            r_lo := period.p_hi;
            r_hi := period.p_hi;
        END IF;
        SELECT coalesce(sum(kwh_consumed_ac), 0), count(*) INTO kwh, n
        FROM meter_history WHERE meter_id = period.meter_id AND ts >= period.p_lo AND ts < r_lo;
        ac_kwh := ac_kwh + kwh; ac_readings := ac_readings + n;
        SELECT coalesce(sum(kwh_consumed_ac), 0), count(*) INTO kwh, n
        FROM meter_history WHERE meter_id = period.meter_id AND ts >= r_hi AND ts < period.p_hi;
        ac_kwh := ac_kwh + kwh; ac_readings := ac_readings + n;
        IF r_lo < r_hi THEN
            SELECT coalesce(sum(h.kwh_consumed_ac), 0), coalesce(sum(h.readings), 0) INTO kwh, n
            FROM meter_hourly h
            WHERE h.meter_id = period.meter_id AND h.hour >= r_lo AND h.hour < r_hi
              AND NOT EXISTS (SELECT 1 FROM hourly_rollup_dirty d
                              WHERE d.stream = 'meter' AND d.hour = h.hour);
            ac_kwh := ac_kwh + kwh; ac_readings := ac_readings + n;
            IF EXISTS (SELECT 1 FROM hourly_rollup_dirty d
                       WHERE d.stream = 'meter' AND d.hour >= r_lo AND d.hour < r_hi) THEN
                SELECT coalesce(sum(m.kwh_consumed_ac), 0), count(m.ts) INTO kwh, n
                FROM hourly_rollup_dirty d
                JOIN meter_history m ON m.meter_id = period.meter_id
                 AND m.ts >= d.hour AND m.ts < d.hour + interval '1 hour'
                WHERE d.stream = 'meter' AND d.hour >= r_lo AND d.hour < r_hi;
                ac_kwh := ac_kwh + kwh; ac_readings := ac_readings + n;
            END IF;
        END IF;
    END LOOP;
END
$$;
