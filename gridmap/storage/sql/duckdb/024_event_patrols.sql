-- v24 (issue 21): security patrols for major events (重大活动安保), gridmap.patrol.eventplan.
-- key_areas: valid_from / valid_to (temporary event areas; NULL = no limit),
--   frequency_min (visit at least once every so many minutes while an event plan
--   runs; the areas an event plan visits by default are those with it set),
--   dwell_min (minutes to stay), hotspot_cells (the H3 cells a hot-spot area came from).
-- patrol_routes: event plans' shift routes (mode 'event', grid_code = the plan's
--   area code): plan_id (patrol_plans.id), shift, valid_from / valid_to (the shift),
--   work_min (walking + dwelling), timetable (JSON: visits and street pieces in
--   order), times_s (JSON: seconds after the plan's start of each position).
-- patrol_plans: one row per event plan (area, window, workers, what was not met).
-- Rows stored before this migration keep NULL in the new columns.
ALTER TABLE key_areas ADD COLUMN "valid_from" TIMESTAMPTZ;
ALTER TABLE key_areas ADD COLUMN "valid_to" TIMESTAMPTZ;
ALTER TABLE key_areas ADD COLUMN "frequency_min" DOUBLE;
ALTER TABLE key_areas ADD COLUMN "dwell_min" DOUBLE;
ALTER TABLE key_areas ADD COLUMN "hotspot_cells" VARCHAR[];

ALTER TABLE patrol_routes ADD COLUMN "plan_id" BIGINT;
ALTER TABLE patrol_routes ADD COLUMN "shift" BIGINT;
ALTER TABLE patrol_routes ADD COLUMN "valid_from" TIMESTAMPTZ;
ALTER TABLE patrol_routes ADD COLUMN "valid_to" TIMESTAMPTZ;
ALTER TABLE patrol_routes ADD COLUMN "work_min" DOUBLE;
ALTER TABLE patrol_routes ADD COLUMN "timetable" VARCHAR;
ALTER TABLE patrol_routes ADD COLUMN "times_s" VARCHAR;

CREATE SEQUENCE patrol_plans_id_seq START 1;
CREATE TABLE patrol_plans (
    id BIGINT PRIMARY KEY DEFAULT nextval('patrol_plans_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "name" VARCHAR,
    "area_code" VARCHAR,
    "grid_codes" VARCHAR[],
    "starts_at" TIMESTAMPTZ,
    "ends_at" TIMESTAMPTZ,
    "road_classes" VARCHAR[],
    "workers" VARCHAR[],
    "area_wkt" VARCHAR,
    "unmet" VARCHAR,
    "summary" VARCHAR,
    "request" VARCHAR,
    "created_by" VARCHAR,
    "created_at" TIMESTAMPTZ,
    "source" VARCHAR,
    "source_id" VARCHAR
);
CREATE INDEX patrol_plans_area_code_idx ON patrol_plans ("area_code");
