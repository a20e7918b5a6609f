-- v9: per-grid statistics (issue 3): area, street length, events by category, workload.
-- Refreshed by `gridmap grids stats` and after every division (gridmap/division/stats.py).

ALTER TABLE grids ADD COLUMN "area_m2" double precision;
ALTER TABLE grids ADD COLUMN "street_length_m" double precision;
ALTER TABLE grids ADD COLUMN "key_area_visits" double precision;
ALTER TABLE grids ADD COLUMN "events_total" bigint;
ALTER TABLE grids ADD COLUMN "events_open" bigint;
ALTER TABLE grids ADD COLUMN "events_city_management" bigint;
ALTER TABLE grids ADD COLUMN "events_dispute" bigint;
ALTER TABLE grids ADD COLUMN "events_safety_hazard" bigint;
ALTER TABLE grids ADD COLUMN "events_epidemic" bigint;
ALTER TABLE grids ADD COLUMN "events_key_task" bigint;
ALTER TABLE grids ADD COLUMN "events_public_security" bigint;
ALTER TABLE grids ADD COLUMN "events_residents_request" bigint;
ALTER TABLE grids ADD COLUMN "events_per_month" double precision;
ALTER TABLE grids ADD COLUMN "workload_hours" double precision;
ALTER TABLE grids ADD COLUMN "workload" double precision;
ALTER TABLE grids ADD COLUMN "stats_from" timestamptz;
ALTER TABLE grids ADD COLUMN "stats_at" timestamptz;
