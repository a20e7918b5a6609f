-- v5 (issue 9): workers' GPS tracks (sensitive personal data).
-- The embedded store has no row-level security: gridmap.patrol.tracks filters
-- every read by the caller (the worker, coordinators whose area covers the
-- grid, city administrators / auditors).

CREATE SEQUENCE patrol_tracks_id_seq START 1;
CREATE TABLE patrol_tracks (
    id BIGINT PRIMARY KEY DEFAULT nextval('patrol_tracks_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "worker" VARCHAR NOT NULL,
    "grid_code" VARCHAR NOT NULL,
    "started_at" TIMESTAMPTZ,
    "ended_at" TIMESTAMPTZ,
    "track_date" DATE,
    "point_count" BIGINT,
    "length_m" DOUBLE,
    "offsets_s" VARCHAR,
    "flags" VARCHAR[],
    "crs_in" VARCHAR,
    "uploaded_by" VARCHAR,
    "uploaded_at" TIMESTAMPTZ,
    "source" VARCHAR,
    "source_id" VARCHAR,
    geometry GEOMETRY NOT NULL
);
CREATE INDEX patrol_tracks_grid_code_idx ON patrol_tracks ("grid_code");
CREATE INDEX patrol_tracks_worker_idx ON patrol_tracks ("worker");
