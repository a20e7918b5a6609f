-- v6 (issue 10): door-knocking campaigns (敲门行动) and their household visits.
-- Visits carry the place of the visit (a precise home point: personal data);
-- the embedded store has no row-level security, gridmap.assessment.doorknock
-- filters every read by the caller's areas.

CREATE SEQUENCE doorknock_campaigns_id_seq START 1;
CREATE TABLE doorknock_campaigns (
    id BIGINT PRIMARY KEY DEFAULT nextval('doorknock_campaigns_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "name" VARCHAR NOT NULL,
    "area_code" VARCHAR NOT NULL,
    "starts_at" TIMESTAMPTZ,
    "ends_at" TIMESTAMPTZ,
    "created_by" VARCHAR,
    "created_at" TIMESTAMPTZ,
    "source" VARCHAR,
    "source_id" VARCHAR
);
CREATE INDEX doorknock_campaigns_area_code_idx ON doorknock_campaigns ("area_code");

CREATE SEQUENCE doorknock_visits_id_seq START 1;
CREATE TABLE doorknock_visits (
    id BIGINT PRIMARY KEY DEFAULT nextval('doorknock_visits_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "campaign_id" BIGINT NOT NULL,
    "household_id" BIGINT NOT NULL,
    "grid_code" VARCHAR NOT NULL,
    "worker" VARCHAR NOT NULL,
    "status" VARCHAR NOT NULL,
    "visited_at" TIMESTAMPTZ NOT NULL,
    "data_correct" BOOLEAN,
    "satisfied" BOOLEAN,
    "note" VARCHAR,
    geometry GEOMETRY NOT NULL
);
CREATE INDEX doorknock_visits_campaign_idx ON doorknock_visits ("campaign_id");
CREATE INDEX doorknock_visits_grid_code_idx ON doorknock_visits ("grid_code");
