-- v32 (issue 22): the nearest-first duplicate search of PostGIS report intake
-- (see postgis/032). The embedded store takes the generic intake path: nothing
-- to do, the version is kept in step with PostGIS.
SELECT 1;
