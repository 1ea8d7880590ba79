-- When each partition's offset was last committed, by the consumer's own wall
-- clock (milliseconds since the epoch), the clock that stamps the dead letters
-- it publishes: a restarted consumer looks for the dead letters it may already
-- have published for a partition's uncommitted records only among those stamped
-- after this time (less a margin), instead of reading the whole dead-letter
-- topic. NULL in rows written before this column existed (updated_at serves).
ALTER TABLE sink_offsets ADD COLUMN committed_ms bigint;
