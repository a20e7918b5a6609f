-- gridmap schema v1 (DuckDB + spatial). Frozen once released: change the schema in a new migration.

CREATE SEQUENCE admin_units_id_seq START 1;
CREATE TABLE admin_units (
    id BIGINT PRIMARY KEY DEFAULT nextval('admin_units_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "code" VARCHAR,
    "name" VARCHAR,
    "name_en" VARCHAR,
    "level" VARCHAR,
    "kind" VARCHAR,
    "parent_code" VARCHAR,
    "source" VARCHAR,
    "source_id" VARCHAR,
    geometry GEOMETRY NOT NULL
);
CREATE INDEX admin_units_geometry_rtree ON admin_units USING RTREE (geometry);

CREATE SEQUENCE grids_id_seq START 1;
CREATE TABLE grids (
    id BIGINT PRIMARY KEY DEFAULT nextval('grids_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "code" VARCHAR,
    "name" VARCHAR,
    "community_code" VARCHAR,
    "households" BIGINT,
    "residents" BIGINT,
    "buildings" BIGINT,
    "workers" VARCHAR[],
    "valid_from" TIMESTAMPTZ,
    "valid_to" TIMESTAMPTZ,
    "source" VARCHAR,
    "source_id" VARCHAR,
    geometry GEOMETRY NOT NULL
);
CREATE INDEX grids_geometry_rtree ON grids USING RTREE (geometry);

CREATE SEQUENCE buildings_id_seq START 1;
CREATE TABLE buildings (
    id BIGINT PRIMARY KEY DEFAULT nextval('buildings_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "name" VARCHAR,
    "address" VARCHAR,
    "use" VARCHAR,
    "floors" BIGINT,
    "area_m2" DOUBLE,
    "households" BIGINT,
    "residents" BIGINT,
    "grid_code" VARCHAR,
    "source" VARCHAR,
    "source_id" VARCHAR,
    geometry GEOMETRY NOT NULL
);
CREATE INDEX buildings_geometry_rtree ON buildings USING RTREE (geometry);

CREATE SEQUENCE roads_id_seq START 1;
CREATE TABLE roads (
    id BIGINT PRIMARY KEY DEFAULT nextval('roads_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "name" VARCHAR,
    "class" VARCHAR,
    "walkable" BOOLEAN,
    "drivable" BOOLEAN,
    "length_m" DOUBLE,
    "source" VARCHAR,
    "source_id" VARCHAR,
    geometry GEOMETRY NOT NULL
);
CREATE INDEX roads_geometry_rtree ON roads USING RTREE (geometry);

CREATE SEQUENCE key_areas_id_seq START 1;
CREATE TABLE key_areas (
    id BIGINT PRIMARY KEY DEFAULT nextval('key_areas_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "name" VARCHAR,
    "kind" VARCHAR,
    "category" VARCHAR,
    "priority" BIGINT,
    "visits_per_day" DOUBLE,
    "community_code" VARCHAR,
    "source" VARCHAR,
    "source_id" VARCHAR,
    geometry GEOMETRY NOT NULL
);
CREATE INDEX key_areas_geometry_rtree ON key_areas USING RTREE (geometry);

CREATE SEQUENCE events_id_seq START 1;
CREATE TABLE events (
    id BIGINT PRIMARY KEY DEFAULT nextval('events_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "category" VARCHAR,
    "subcategory" VARCHAR,
    "status" VARCHAR,
    "urgency" VARCHAR,
    "description" VARCHAR,
    "channel" VARCHAR,
    "reporter" VARCHAR,
    "grid_code" VARCHAR,
    "reported_at" TIMESTAMPTZ,
    "closed_at" TIMESTAMPTZ,
    "synthetic" BOOLEAN,
    "source" VARCHAR,
    "source_id" VARCHAR,
    geometry GEOMETRY NOT NULL
);
CREATE INDEX events_geometry_rtree ON events USING RTREE (geometry);

CREATE SEQUENCE patrol_routes_id_seq START 1;
CREATE TABLE patrol_routes (
    id BIGINT PRIMARY KEY DEFAULT nextval('patrol_routes_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "worker" VARCHAR,
    "grid_code" VARCHAR,
    "route_date" DATE,
    "mode" VARCHAR,
    "length_m" DOUBLE,
    "source" VARCHAR,
    "source_id" VARCHAR,
    geometry GEOMETRY NOT NULL
);
CREATE INDEX patrol_routes_geometry_rtree ON patrol_routes USING RTREE (geometry);

CREATE SEQUENCE workers_id_seq START 1;
CREATE TABLE workers (
    id BIGINT PRIMARY KEY DEFAULT nextval('workers_id_seq'),
    source_key VARCHAR NOT NULL UNIQUE,
    "name" VARCHAR,
    "role" VARCHAR,
    "area_code" VARCHAR,
    "grid_codes" VARCHAR[],
    "phone" VARCHAR,
    "source" VARCHAR,
    "source_id" VARCHAR
);
