-- v33 (issue 22): PostGIS report intake looks up originals only for the
-- candidates it returns (see postgis/033). The embedded store takes the
-- generic intake path: nothing to do, the version is kept in step with PostGIS.
SELECT 1;
