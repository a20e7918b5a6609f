-- v30 (issue 25): audit rows carry an area code; the application role reads only
-- the audit rows of its areas and nothing secret or foreign of the webhook tables.
--
-- * ``audit_log.area_code``: grid / community / town code of what a row concerns
--   (gridmap.audit.record(area=...): unmasked events, registry reads ...). The
--   policy of 026 (read only with every area in scope) becomes: with every area
--   in scope, all rows; else the rows whose area code starts with one of the
--   caller's prefixes. Rows without an area (logins, users) stay city-wide only.
--   Appending stays open to every scope (026); the log stays append-only (004).
-- * ``webhook_subscriptions`` (027): the signing ``secret`` is readable by the
--   owner only (the trusted store and the delivery worker); the application
--   role reads the other columns of the subscriptions whose areas all lie in
--   its own ('' = city-wide: only with every area in scope) and writes none.
-- * ``webhook_outbox``: rows of the caller's areas (grid_code), as events.
-- * ``webhook_deliveries`` (and the dead letters, status 'dead'): rows of the
--   subscriptions the caller may read; written only by the trusted worker.
--
-- Row-level security is ENABLEd, not FORCEd, as in 026: the owner (migrations,
-- the trusted store, the CLI, the delivery worker) is not bound by it.

ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS "area_code" text;
CREATE INDEX IF NOT EXISTS audit_log_area_code_idx ON audit_log ("area_code" text_pattern_ops);

DROP POLICY IF EXISTS audit_log_read_all_areas ON audit_log;
DROP POLICY IF EXISTS audit_log_read_area ON audit_log;
CREATE POLICY audit_log_read_area ON audit_log FOR SELECT TO gridmap_app
    USING (
        (SELECT gridmap_area_all())
        OR ("area_code" ^@ ANY ((SELECT gridmap_area_prefixes())::text[]))
    );

-- Does every code of *areas* lie in the caller's areas? ('' or none: city-wide.)
CREATE OR REPLACE FUNCTION gridmap_areas_within(areas text[]) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT gridmap_area_all() OR (
        cardinality(areas) > 0
        AND NOT EXISTS (
            SELECT 1 FROM unnest(areas) AS a(code)
            WHERE a.code IS NULL OR a.code = ''
               OR NOT (a.code ^@ ANY (gridmap_area_prefixes()))
        )
    )
$$;

REVOKE ALL ON webhook_subscriptions FROM gridmap_app;
GRANT SELECT ("id", "source_key", "url", "event_types", "areas", "owner", "owner_role",
              "active", "created_at", "source", "source_id")
    ON webhook_subscriptions TO gridmap_app;
ALTER TABLE webhook_subscriptions ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS webhook_subscriptions_area ON webhook_subscriptions;
CREATE POLICY webhook_subscriptions_area ON webhook_subscriptions FOR SELECT TO gridmap_app
    USING (gridmap_areas_within("areas"));

ALTER TABLE webhook_outbox ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS webhook_outbox_area ON webhook_outbox;
CREATE POLICY webhook_outbox_area ON webhook_outbox TO gridmap_app
    USING (
        (SELECT gridmap_area_all())
        OR ("grid_code" ^@ ANY ((SELECT gridmap_area_prefixes())::text[]))
    )
    WITH CHECK (
        (SELECT gridmap_area_all())
        OR ("grid_code" ^@ ANY ((SELECT gridmap_area_prefixes())::text[]))
    );

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON webhook_deliveries FROM gridmap_app;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS webhook_deliveries_area ON webhook_deliveries;
CREATE POLICY webhook_deliveries_area ON webhook_deliveries FOR SELECT TO gridmap_app
    USING (
        (SELECT gridmap_area_all())
        OR EXISTS (
            SELECT 1 FROM webhook_subscriptions s WHERE s.id = "subscription_id"
        )
    );
