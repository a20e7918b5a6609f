-- v28 (issue 24): the media_url of an Open311 GeoReport v2 request (api/routers/open311.py),
-- stored as the client gave it (an http(s) URL, never fetched by gridmap) and
-- returned as the request's media_url. Events stored before keep NULL.
-- On the partitioned events table (008) the column reaches every partition;
-- a nullable column without a default rewrites no row.
ALTER TABLE events ADD COLUMN IF NOT EXISTS "media_url" text;
