-- v11: the H3 cells of each event at resolutions 7–11, as BIGINT H3 indexes (issue 8).
-- Stores fill them on write (gridmap.heat.point_cells); a heat map is then a GROUP BY
-- on one column (gridmap.heat.event_cell_counts). One column per resolution: H3 cells
-- do not nest exactly, and counts must equal binning the points themselves.
-- Rows stored before this migration are filled by gridmap.heat.fill_event_cells;
-- until then they are binned in Python, so counts stay exact.
ALTER TABLE events ADD COLUMN "h3_r7" BIGINT;
ALTER TABLE events ADD COLUMN "h3_r8" BIGINT;
ALTER TABLE events ADD COLUMN "h3_r9" BIGINT;
ALTER TABLE events ADD COLUMN "h3_r10" BIGINT;
ALTER TABLE events ADD COLUMN "h3_r11" BIGINT;
