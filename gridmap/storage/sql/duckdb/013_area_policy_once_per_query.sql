-- v13: PostGIS only (row-level security policies evaluated once per query);
-- DuckDB has no row-level security. Kept so both dialects number alike.
SELECT 1;
