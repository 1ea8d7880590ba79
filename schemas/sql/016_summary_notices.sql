-- The API's rollup cache learns of every change to the hourly summaries as it
-- commits: which hours of which stream changed (summaries written or deleted,
-- hours marked dirty by a late reading). While it hears them, a performance
-- report whose hours were not named since the cache last read them needs no
-- statement to tell that the cache is current, the way the state cache
-- already follows the hot store's commits (PG_HOT_STATE_CHANNEL).
--
-- Payload: 'stream:hour,hour,...' (hours since 1970), or '*' for "anything
-- may have changed" (too many hours for a notice's 8000 bytes, or a replay's
-- switch of stores). Delivered only if the transaction commits, after it;
-- identical payloads within one transaction are delivered once.
CREATE FUNCTION eie_announce_summary_hours(stream text, hours bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    payload text := stream || ':' || array_to_string(hours, ',');
BEGIN
    IF cardinality(hours) = 0 THEN
        RETURN;
    END IF;
    IF octet_length(payload) > 7000 THEN
        payload := '*';
    END IF;
    PERFORM pg_notify('eie_summaries', payload);
END
$$;

CREATE OR REPLACE FUNCTION eie_note_summary_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hourly_summary_change (stream, hour, changed_at)
    SELECT TG_ARGV[0], hour, clock_timestamp() FROM (SELECT DISTINCT hour FROM changed) touched
    ON CONFLICT (stream, hour) DO UPDATE SET changed_at = EXCLUDED.changed_at;
    PERFORM eie_announce_summary_hours(TG_ARGV[0], ARRAY(
        SELECT DISTINCT floor(extract(epoch FROM hour) / 3600)::bigint FROM changed));
    RETURN NULL;
END
$$;

CREATE FUNCTION eie_note_dirty_hours() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT DISTINCT stream FROM marked LOOP
        PERFORM eie_announce_summary_hours(s, ARRAY(
            SELECT DISTINCT floor(extract(epoch FROM hour) / 3600)::bigint
            FROM marked WHERE marked.stream = s));
    END LOOP;
    RETURN NULL;
END
$$;

-- Only the rows inserted: an hour already dirty (ON CONFLICT DO NOTHING) was
-- announced when it became so.
CREATE TRIGGER hourly_rollup_dirty_marked AFTER INSERT ON hourly_rollup_dirty
    REFERENCING NEW TABLE AS marked FOR EACH STATEMENT
    EXECUTE FUNCTION eie_note_dirty_hours();
