-- The stamps the API's caches compare to tell whether what they hold is still
-- current: a time as microseconds since the epoch (a bigint compares exactly;
-- its text did not), defined once here so that every reader computes it alike.
CREATE FUNCTION eie_stamp(t timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT (extract(epoch FROM t) * 1000000)::bigint $$;

-- The newest change of any hour's summaries; NULL before the first.
CREATE FUNCTION eie_summaries_changed() RETURNS bigint
    LANGUAGE sql STABLE AS $$ SELECT eie_stamp(max(changed_at)) FROM hourly_summary_change $$;

-- The newest assignment stored; NULL before the first.
CREATE FUNCTION eie_assignments_stored() RETURNS bigint
    LANGUAGE sql STABLE AS $$ SELECT eie_stamp(max(stored_at)) FROM vehicle_meter_assignment $$;
