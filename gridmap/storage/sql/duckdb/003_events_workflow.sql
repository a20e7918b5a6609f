-- v3: event intake, routing and workflow (issue 4).

ALTER TABLE events ADD COLUMN "kind" VARCHAR;
ALTER TABLE events ADD COLUMN "version" BIGINT;
ALTER TABLE events ADD COLUMN "duplicate_of" BIGINT;
ALTER TABLE events ADD COLUMN "community_code" VARCHAR;
ALTER TABLE events ADD COLUMN "town_code" VARCHAR;
ALTER TABLE events ADD COLUMN "assigned_to" VARCHAR[];
ALTER TABLE events ADD COLUMN "responsible" VARCHAR;
ALTER TABLE events ADD COLUMN "step_due_at" TIMESTAMPTZ;
ALTER TABLE events ADD COLUMN "due_at" TIMESTAMPTZ;
ALTER TABLE events ADD COLUMN "self_handled" BOOLEAN;
ALTER TABLE events ADD COLUMN "rework_count" BIGINT;
ALTER TABLE events ADD COLUMN "extension_count" BIGINT;
ALTER TABLE events ADD COLUMN "pending_extension_hours" DOUBLE;
ALTER TABLE events ADD COLUMN "escalated_to" VARCHAR;
ALTER TABLE events ADD COLUMN "supervised_at" TIMESTAMPTZ;
ALTER TABLE events ADD COLUMN "updated_at" TIMESTAMPTZ;
ALTER TABLE events ADD COLUMN "photos" VARCHAR[];
ALTER TABLE events ADD COLUMN "contact" VARCHAR;
CREATE INDEX events_duplicate_of_idx ON events ("duplicate_of");
CREATE INDEX events_source_id_idx ON events ("source_id");

CREATE SEQUENCE event_transitions_id_seq START 1;
CREATE TABLE event_transitions (
    id BIGINT PRIMARY KEY DEFAULT nextval('event_transitions_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "event_id" BIGINT,
    "seq" BIGINT,
    "action" VARCHAR,
    "from_status" VARCHAR,
    "to_status" VARCHAR,
    "actor" VARCHAR,
    "actor_role" VARCHAR,
    "at" TIMESTAMPTZ,
    "note" VARCHAR,
    "photos" VARCHAR[],
    "details" VARCHAR
);
CREATE SEQUENCE idempotency_keys_id_seq START 1;
CREATE TABLE idempotency_keys (
    id BIGINT PRIMARY KEY DEFAULT nextval('idempotency_keys_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "principal" VARCHAR,
    "key" VARCHAR,
    "request_hash" VARCHAR,
    "status_code" BIGINT,
    "response" VARCHAR,
    "event_id" BIGINT,
    "created_at" TIMESTAMPTZ
);
CREATE INDEX event_transitions_event_id_idx ON event_transitions ("event_id");
CREATE INDEX idempotency_keys_lookup_idx ON idempotency_keys ("principal", "key");
