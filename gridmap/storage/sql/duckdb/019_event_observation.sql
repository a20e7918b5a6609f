-- v19 (issue 17): what the phone app knows about a report.
-- observed_at: when the grid worker saw the problem (the KPIs count on-time closure
--   and time to close from it when given, gridmap.events.kpis);
-- accuracy_m: the GPS accuracy of the reported point, in metres;
-- reporter_grid_code: the reporter's own grid, set only when the point lay just
--   outside it (within min(accuracy_m, edge tolerance)) and the report was routed
--   to the neighbouring grid that contains the point (gridmap.events.intake).
-- Events stored before this migration keep NULL in all three: they count from
-- reported_at, as before.
ALTER TABLE events ADD COLUMN "observed_at" TIMESTAMPTZ;
ALTER TABLE events ADD COLUMN "accuracy_m" DOUBLE;
ALTER TABLE events ADD COLUMN "reporter_grid_code" VARCHAR;
