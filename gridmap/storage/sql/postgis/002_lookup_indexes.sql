-- v2: b-tree indexes for the lookups the API and KPIs make.
CREATE INDEX grids_code_idx ON grids ("code");
CREATE INDEX grids_community_code_idx ON grids ("community_code");
CREATE INDEX buildings_grid_code_idx ON buildings ("grid_code");
CREATE INDEX events_grid_code_idx ON events ("grid_code");
CREATE INDEX events_reported_at_idx ON events ("reported_at");
CREATE INDEX events_status_idx ON events ("status");
CREATE INDEX admin_units_code_idx ON admin_units ("code");
CREATE INDEX admin_units_parent_code_idx ON admin_units ("parent_code");
