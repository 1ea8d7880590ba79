-- The state tables take an update per device and reading: every second per
-- device under bench/freshness.sh's steady load. On full pages (fillfactor
-- 100) an update's new row version goes to another page, so it also inserts
-- into the primary key, and the autovacuum that follows every minute scans
-- the index while the hot sink's batches wait. On pages kept half empty the
-- new version stays on its page (a HOT update, no index entry), and the page
-- is pruned as it goes.
ALTER TABLE meter_state SET (fillfactor = 50);
ALTER TABLE vehicle_state SET (fillfactor = 50);
