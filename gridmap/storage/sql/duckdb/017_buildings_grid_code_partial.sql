-- v17: PostGIS only (partial grid_code index on buildings); DuckDB has no
-- partial indexes. Kept so both dialects number alike.
SELECT 1;
