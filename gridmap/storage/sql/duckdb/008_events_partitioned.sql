-- v8: PostGIS partitions events by month (postgis/008_events_partitioned.sql).
-- The embedded store has no table partitioning to gain from (DuckDB prunes by
-- row-group statistics); this no-op keeps the version numbers of both dialects aligned.
SELECT 1;
