-- v27 (issue 24): webhooks (gridmap.webhooks, /subscriptions).
-- webhook_subscriptions: who wants which event changes (reported, dispatched,
--   overdue, supervised, closed) delivered to which URL, signed with which
--   secret, for which areas (grid-code prefixes of the subscriber; '' = all).
-- webhook_outbox: one row per event change to announce, written in the same
--   transaction as the change itself (nothing is lost if the process dies);
--   state 'new' until the delivery worker has made its deliveries ('fanned').
-- webhook_deliveries: one row per (subscription, outbox row); delivery_id is
--   the id receivers deduplicate by; status pending → delivered, or dead after
--   the last retry (the dead-letter list).
CREATE SEQUENCE webhook_subscriptions_id_seq START 1;
CREATE TABLE webhook_subscriptions (
    id BIGINT PRIMARY KEY DEFAULT nextval('webhook_subscriptions_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "url" VARCHAR,
    "secret" VARCHAR,
    "event_types" VARCHAR[],
    "areas" VARCHAR[],
    "owner" VARCHAR,
    "owner_role" VARCHAR,
    "active" BOOLEAN,
    "created_at" TIMESTAMPTZ,
    "source" VARCHAR,
    "source_id" VARCHAR
);

CREATE SEQUENCE webhook_outbox_id_seq START 1;
CREATE TABLE webhook_outbox (
    id BIGINT PRIMARY KEY DEFAULT nextval('webhook_outbox_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "event_id" BIGINT,
    "grid_code" VARCHAR,
    "kind" VARCHAR,
    "payload" VARCHAR,
    "state" VARCHAR,
    "created_at" TIMESTAMPTZ
);
CREATE INDEX webhook_outbox_state_idx ON webhook_outbox ("state");

CREATE SEQUENCE webhook_deliveries_id_seq START 1;
CREATE TABLE webhook_deliveries (
    id BIGINT PRIMARY KEY DEFAULT nextval('webhook_deliveries_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "delivery_id" VARCHAR,
    "subscription_id" BIGINT,
    "outbox_id" BIGINT,
    "event_id" BIGINT,
    "kind" VARCHAR,
    "status" VARCHAR,
    "attempts" BIGINT,
    "next_attempt_at" TIMESTAMPTZ,
    "last_error" VARCHAR,
    "last_status" BIGINT,
    "delivered_at" TIMESTAMPTZ,
    "created_at" TIMESTAMPTZ
);
CREATE INDEX webhook_deliveries_status_idx ON webhook_deliveries ("status");
CREATE INDEX webhook_deliveries_subscription_idx ON webhook_deliveries ("subscription_id");
