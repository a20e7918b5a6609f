-- v30 (issue 25): audit rows carry the area code (grid / community / town code) of
-- what they concern, filled by gridmap.audit.record(area=...) where it is known
-- (e.g. one row per unmasked event with the event's grid code). Row-level
-- security on audit_log and on the webhook tables is PostgreSQL's (see
-- postgis/030); the embedded store is one file opened by one trusted process.
ALTER TABLE audit_log ADD COLUMN "area_code" VARCHAR;
CREATE INDEX audit_log_area_code_idx ON audit_log ("area_code");
