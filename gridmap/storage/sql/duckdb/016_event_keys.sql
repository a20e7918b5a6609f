-- v16: PostGIS only (postgis/016_event_keys.sql: one source key per event across
-- the monthly partitions, so that concurrent writers cannot store a report twice).
-- DuckDB's events table is not partitioned: its source_key UNIQUE constraint
-- spans the whole table already, and one process writes at a time. This no-op
-- keeps the version numbers of both dialects aligned.
SELECT 1;
