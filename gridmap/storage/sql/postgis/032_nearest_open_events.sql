-- v32 (issue 22): the duplicate search of report intake reads only the nearest events.
--
-- ``POST /events`` (gridmap/storage/intake_sql.py) looks for open events of the
-- same category near a new report. Reading every such event in the box around
-- the report and sorting them all by distance costs as many rows as the box
-- holds: at a hot spot (an incident, a market with daily complaints) hundreds,
-- and under load the cost of each report grew with the table. This function
-- walks the events nearest first (the GiST index's KNN order: planar degrees)
-- and stops as soon as no later event can be nearer on the sphere than the
-- nearest found: a later event at planar distance g (degrees) is at least
-- k·g metres away, k being the metres of a degree of longitude at the box's
-- widest latitude (shrunk by 0.1 % for the planar approximation). It returns
-- every event walked, with its sphere distance ``d``: the nearest event of the
-- box and all that tie with it are among them (the caller orders by ``d``
-- then ``id`` and measures the few it keeps again). A FOR loop reads its query
-- through a cursor, planned for a fast start: the GiST index in KNN order.

CREATE OR REPLACE FUNCTION gridmap_open_events_near(
    p_lon float8, p_lat float8, p_xmin float8, p_ymin float8, p_xmax float8, p_ymax float8,
    p_category text, p_statuses text[], p_since timestamptz
)
RETURNS TABLE (id bigint, duplicate_of bigint, x float8, y float8, areas json, d float8)
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
            e.grid_code, e.community_code, e.town_code,
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
        areas := CASE WHEN r.dup IS NULL
            THEN json_build_array(r.grid_code, r.community_code, r.town_code)
            ELSE (SELECT json_build_array(o.grid_code, o.community_code, o.town_code)
                  FROM events o WHERE o.id = r.dup LIMIT 1) END;
        RETURN NEXT;
    END LOOP;
END
$$;
