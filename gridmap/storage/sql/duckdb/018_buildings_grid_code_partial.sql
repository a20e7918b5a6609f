-- v18: PostGIS only (postgis/018_buildings_grid_code_partial.sql makes the
-- buildings' grid_code index partial; DuckDB has no partial indexes). This no-op
-- keeps the version numbers of both dialects aligned.
SELECT 1;
