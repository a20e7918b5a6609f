-- v15: PostGIS only (source_key compared bytewise, COLLATE "C"); DuckDB's
-- default collation is bytewise already. Kept so both dialects number alike.
SELECT 1;
