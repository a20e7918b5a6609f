-- v29 (issue 22): creating a month's partition of ``events`` no longer races with
-- writers of the same month. Concurrent first reports of a new month (report intake
-- in a thread pool) made one writer give up creating the partition and insert into
-- events_default while another moved that month out of DEFAULT and attached the
-- partition: when the first committed in between, ATTACH PARTITION failed with
-- "updated partition constraint for default partition would be violated"
-- (check_violation), which reached the client as a 500. The creator now locks
-- events_default against inserts (SHARE ROW EXCLUSIVE) before looking for the
-- month's rows there. Test: tests/security/test_intake_restart_race.py.
CREATE OR REPLACE FUNCTION gridmap_events_partition(month_start date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    m date := date_trunc('month', month_start)::date;
    part text := format('events_%s', to_char(m, 'YYYY_MM'));
    lo timestamptz := m::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (m + interval '1 month')::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN part;
    END IF;
    -- Concurrent writers of the same new month: one creates, the others wait.
    PERFORM pg_advisory_xact_lock(7262611);
    IF to_regclass(part) IS NOT NULL THEN
        RETURN part;
    END IF;
    -- Writers that could not create the month (gridmap_events_try_partition gives
    -- up after 100 ms) put its rows into DEFAULT. Wait for those still in flight
    -- and keep new ones out until the partition exists: the rows moved below are
    -- then all there are, and attaching (or creating) the partition finds none of
    -- the month left in DEFAULT. (v29: without this lock a row committed between
    -- the move and the ATTACH failed the write with check_violation, a 500.)
    LOCK TABLE events_default IN SHARE ROW EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM events_default WHERE reported_at >= lo AND reported_at < hi) THEN
        -- Rows of this month already sit in the DEFAULT partition: move them into
        -- a new table, then attach it (attaching checks the DEFAULT holds none).
        EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS)', part);
        EXECUTE format(
            'WITH moved AS (DELETE FROM events_default '
            'WHERE reported_at >= $1 AND reported_at < $2 RETURNING *) '
            'INSERT INTO %I SELECT * FROM moved', part
        ) USING lo, hi;
        EXECUTE format(
            'ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi
        );
    ELSE
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)', part, lo, hi
        );
    END IF;
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', part);
    EXECUTE format('REVOKE ALL ON %I FROM gridmap_app', part);
    RETURN part;
END
$$;
