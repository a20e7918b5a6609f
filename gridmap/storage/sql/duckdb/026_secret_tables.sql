-- v26 (issue 25): column privileges and row-level security on users, audit_log
-- and idempotency_keys are PostgreSQL's (see postgis/026). The embedded store
-- is one file opened by one trusted process and has no roles: nothing to do,
-- the version is kept in step with PostGIS.
SELECT 1;
