-- v31 (issue 25): the sign-in functions of an untrusted PostGIS API (see postgis/031).
-- The embedded store is one file opened by one trusted process and has no roles:
-- nothing to do, the version is kept in step with PostGIS.
SELECT 1;
