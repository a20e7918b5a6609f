-- v12: PostGIS only (LEAKPROOF `&&` for index use under row-level security);
-- DuckDB has no row-level security. Kept so both dialects number alike.
SELECT 1;
