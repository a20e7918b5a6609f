-- v4 (issue 5): users, audit log, resident registry (DuckDB + spatial).
-- The embedded store has no roles and no row-level security: area scoping is
-- the application's Prefix filter, and the audit log is append-only by the
-- store refusing UPDATE/DELETE on it (gridmap.storage.duckdb).

CREATE SEQUENCE users_id_seq START 1;
CREATE TABLE users (
    id BIGINT PRIMARY KEY DEFAULT nextval('users_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "name" VARCHAR NOT NULL UNIQUE,
    "role" VARCHAR NOT NULL,
    "areas" VARCHAR[],
    "can_unmask" BOOLEAN,
    "password_hash" VARCHAR,
    "api_key_hash" VARCHAR,
    "disabled" BOOLEAN,
    "created_at" TIMESTAMPTZ
);

CREATE SEQUENCE audit_log_id_seq START 1;
CREATE TABLE audit_log (
    id BIGINT PRIMARY KEY DEFAULT nextval('audit_log_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "at" TIMESTAMPTZ,
    "actor" VARCHAR NOT NULL,
    "role" VARCHAR,
    "action" VARCHAR NOT NULL,
    "target" VARCHAR,
    "detail" VARCHAR
);

CREATE SEQUENCE households_id_seq START 1;
CREATE TABLE households (
    id BIGINT PRIMARY KEY DEFAULT nextval('households_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "household_no" VARCHAR,
    "kind" VARCHAR,
    "address" VARCHAR,
    "building_id" BIGINT,
    "grid_code" VARCHAR NOT NULL,
    "created_by" VARCHAR,
    "created_at" TIMESTAMPTZ
);
CREATE INDEX households_grid_code_idx ON households ("grid_code");

CREATE SEQUENCE residents_id_seq START 1;
CREATE TABLE residents (
    id BIGINT PRIMARY KEY DEFAULT nextval('residents_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "household_id" BIGINT,
    "grid_code" VARCHAR NOT NULL,
    "category" VARCHAR,
    "name_enc" VARCHAR,
    "name_masked" VARCHAR,
    "id_number_enc" VARCHAR,
    "id_number_index" VARCHAR,
    "id_number_masked" VARCHAR,
    "phone_enc" VARCHAR,
    "phone_index" VARCHAR,
    "phone_masked" VARCHAR,
    "gender" VARCHAR,
    "birth_year" BIGINT,
    "created_by" VARCHAR,
    "created_at" TIMESTAMPTZ
);
CREATE INDEX residents_grid_code_idx ON residents ("grid_code");
CREATE INDEX residents_id_number_index_idx ON residents ("id_number_index");
