-- v33 (issue 22): the nearest-first duplicate search looks up originals only for what it returns.
--
-- The function of v32 built the areas of the original each walked event links
-- to (a lookup of the original by id, through every partition of ``events``)
-- for every event it walked, though the caller keeps only the NEAREST
-- (intake_sql.py, eight). At a hot spot, where reports pile up at one point
-- (an incident, a market), every event at that point is walked (they tie at
-- distance 0), most of them linked to an original: PostgreSQL's CPU per
-- report rose from 1.3 to 2.2 ms (benchmarks/profile_intake.py --hot-spot).
-- The walk now returns each event's own area codes; the caller's query looks
-- up the original's areas for the few rows it keeps. The walk itself, and so
-- the events found, are those of v32.

DROP FUNCTION IF EXISTS gridmap_open_events_near(
    float8, float8, float8, float8, float8, float8, text, text[], timestamptz
);

CREATE FUNCTION gridmap_open_events_near(
    p_lon float8, p_lat float8, p_xmin float8, p_ymin float8, p_xmax float8, p_ymax float8,
    p_category text, p_statuses text[], p_since timestamptz
)
RETURNS TABLE (
    id bigint, duplicate_of bigint, x float8, y float8,
    grid_code text, community_code text, town_code text, d float8
)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    pt geometry := ST_SetSRID(ST_MakePoint(p_lon, p_lat), 4326);
    k float8 := 6370986.0 * pi() / 180.0
        * cos(radians(least(greatest(abs(p_ymin), abs(p_ymax)), 89.9))) * 0.999;
    best float8 := 'Infinity';
    r record;
BEGIN
    FOR r IN
        SELECT e.id AS eid, e.duplicate_of AS dup, ST_X(e.geometry) AS ex, ST_Y(e.geometry) AS ey,
            e.grid_code AS g, e.community_code AS c, e.town_code AS t,
            e.geometry <-> pt AS gd, ST_DistanceSphere(e.geometry, pt) AS ed
        FROM events e
        WHERE e.geometry && ST_MakeEnvelope(p_xmin, p_ymin, p_xmax, p_ymax, 4326)
          AND e.category = p_category AND e.status = ANY(p_statuses)
          AND e.reported_at >= p_since
        ORDER BY e.geometry <-> pt
    LOOP
        EXIT WHEN r.gd * k > best;  -- no later event can be nearer than the nearest found
        best := least(best, r.ed);
        id := r.eid; duplicate_of := r.dup; x := r.ex; y := r.ey; d := r.ed;
        grid_code := r.g; community_code := r.c; town_code := r.t;
        RETURN NEXT;
    END LOOP;
END
$$;
