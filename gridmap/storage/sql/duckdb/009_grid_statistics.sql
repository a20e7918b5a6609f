-- v9: per-grid statistics (issue 3): area, street length, events by category, workload.
-- Refreshed by `gridmap grids stats` and after every division (gridmap/division/stats.py).

ALTER TABLE grids ADD COLUMN "area_m2" DOUBLE;
ALTER TABLE grids ADD COLUMN "street_length_m" DOUBLE;
ALTER TABLE grids ADD COLUMN "key_area_visits" DOUBLE;
ALTER TABLE grids ADD COLUMN "events_total" BIGINT;
ALTER TABLE grids ADD COLUMN "events_open" BIGINT;
ALTER TABLE grids ADD COLUMN "events_city_management" BIGINT;
ALTER TABLE grids ADD COLUMN "events_dispute" BIGINT;
ALTER TABLE grids ADD COLUMN "events_safety_hazard" BIGINT;
ALTER TABLE grids ADD COLUMN "events_epidemic" BIGINT;
ALTER TABLE grids ADD COLUMN "events_key_task" BIGINT;
ALTER TABLE grids ADD COLUMN "events_public_security" BIGINT;
ALTER TABLE grids ADD COLUMN "events_residents_request" BIGINT;
ALTER TABLE grids ADD COLUMN "events_per_month" DOUBLE;
ALTER TABLE grids ADD COLUMN "workload_hours" DOUBLE;
ALTER TABLE grids ADD COLUMN "workload" DOUBLE;
ALTER TABLE grids ADD COLUMN "stats_from" TIMESTAMPTZ;
ALTER TABLE grids ADD COLUMN "stats_at" TIMESTAMPTZ;
