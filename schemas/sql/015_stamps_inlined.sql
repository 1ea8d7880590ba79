-- The freshness stamps of 013 are read in the API's hottest statement (the
-- history sums, once per batch of performance reports, on a single worker).
-- eie_stamp was declared IMMUTABLE over extract() on a timestamptz, which is
-- STABLE, and PostgreSQL never inlines a function whose body is more volatile
-- than its declaration: each call went through the SQL-function executor.
-- Declared STABLE it is inlined. The two reading functions cannot be (an
-- aggregate in the body is never inlined) and cost 0.15 ms per statement
-- (pgbench, against 0.05 ms for the same expressions inline), so the API
-- writes their expressions itself, once (api/data.h, DATA_SUMMARIES_CHANGED
-- and DATA_ASSIGNMENTS_STORED), and they go.
ALTER FUNCTION eie_stamp(timestamptz) STABLE;
DROP FUNCTION eie_summaries_changed();
DROP FUNCTION eie_assignments_stored();
