-- v26 (issue 25): the application role reads no secret and no other area's audit rows.
--
-- Row-level security of 004 covers the area tables; the tables holding secrets
-- or records of everyone were readable in full by ``gridmap_app`` (raw SQL in
-- a scoped transaction, or an API connected as a LOGIN member of it):
--
-- * ``users``: password and API-key hashes. Column privileges leave the
--   application role the account columns it lists workers by (name, role,
--   areas, flags) and none of the hashes. Authentication reads the hashes as
--   the schema owner (the trusted store outside a scope), never as the app.
-- * ``audit_log``: who did what, city-wide (rows carry no area code). The
--   application role may append rows from any scope but read them only with
--   every area in scope (``gridmap.areas = '*'``, a city-wide principal).
-- * ``idempotency_keys``: stored answers of event reports (descriptions,
--   locations). Kept by the trusted store only; the application role sees and
--   writes rows only with every area in scope.
--
-- Row-level security is ENABLEd, not FORCEd: the owner (migrations, the
-- trusted store, the CLI) is not bound by it. Needs no role attribute.

REVOKE SELECT ON users FROM gridmap_app;
GRANT SELECT ("id", "source_key", "name", "role", "areas", "can_unmask", "disabled", "created_at")
    ON users TO gridmap_app;

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS audit_log_read_all_areas ON audit_log;
DROP POLICY IF EXISTS audit_log_append ON audit_log;
CREATE POLICY audit_log_read_all_areas ON audit_log FOR SELECT TO gridmap_app
    USING ((SELECT coalesce(current_setting('gridmap.areas', true), '') = '*'));
CREATE POLICY audit_log_append ON audit_log FOR INSERT TO gridmap_app
    WITH CHECK (true);

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS idempotency_keys_all_areas ON idempotency_keys;
CREATE POLICY idempotency_keys_all_areas ON idempotency_keys TO gridmap_app
    USING ((SELECT coalesce(current_setting('gridmap.areas', true), '') = '*'))
    WITH CHECK ((SELECT coalesce(current_setting('gridmap.areas', true), '') = '*'));
