-- v8 (issue 11): events partitioned by month of reported_at (docs/scale.md, section 2).
--
-- * ``events`` becomes a table declaratively partitioned by RANGE (reported_at),
--   one partition per UTC month (``events_YYYY_MM``) plus ``events_default``
--   (rows without reported_at, and months nobody created yet).
-- * Unique keys must include the partition key: the primary key on ``id`` becomes
--   ``UNIQUE (id, reported_at)`` and ``source_key UNIQUE`` becomes
--   ``UNIQUE NULLS NOT DISTINCT (source_key, reported_at)`` (so events without a
--   report time still deduplicate). ``PostGISStore.write`` inserts with
--   ``ON CONFLICT (source_key, reported_at) DO NOTHING`` and skips source keys
--   already stored in any month (``NOT EXISTS``), so a report re-sent with a new
--   report time stays idempotent.
-- * reported_at stays nullable (such rows live in the DEFAULT partition): a
--   primary key would force NOT NULL and change what older clients may store.
-- * ``gridmap_events_partition(date)`` creates a month's partition on demand
--   (moving that month's rows out of the DEFAULT partition first); the store calls
--   ``gridmap_events_ensure_partitions`` before writing events of new months (it
--   never waits for a lock: if it cannot create a month at once, the rows go to
--   DEFAULT and move out when the month is created later), and
--   ``gridmap db partitions`` creates months ahead.
-- * ``gridmap_events_archive_month`` detaches and drops an exported month
--   (``gridmap db archive --month YYYY-MM --out DIR``).
-- * Row-level security: ENABLE + FORCE and the ``events_area`` policy on the
--   parent, which is what applies to every query through ``events``. Partitions
--   also have RLS enabled and the application role has no privilege on them,
--   so they cannot be read around the parent's policy.
-- * No table references events(id) by a foreign key (checked in 001–007:
--   ``duplicate_of`` is a plain bigint), so nothing else changes.
--
-- Existing rows are copied month by month into the new table in this
-- migration's transaction; the old table is dropped at the end.

ALTER TABLE events RENAME TO events_v7;

CREATE TABLE events (LIKE events_v7 INCLUDING DEFAULTS) PARTITION BY RANGE (reported_at);
ALTER TABLE events ALTER COLUMN id SET NOT NULL;
ALTER TABLE events ALTER COLUMN source_key SET NOT NULL;
ALTER TABLE events ALTER COLUMN geometry SET NOT NULL;
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- The partition of the month holding *month_start* (created if missing).
CREATE FUNCTION gridmap_events_partition(month_start date) RETURNS text
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

-- The same for a writer in the middle of its own transaction (the store, before
-- inserting events): creating a partition locks ``events`` exclusively, and two
-- writers that both read events earlier in their transactions would deadlock
-- waiting for each other. So it never waits: if the lock is not free within
-- 100 ms it gives up (NULL) and the rows go to the DEFAULT partition, from which
-- the next creation of the month (a later write, ``gridmap db partitions``) moves them.
CREATE FUNCTION gridmap_events_try_partition(month_start date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    part text := format('events_%s', to_char(date_trunc('month', month_start), 'YYYY_MM'));
    old_timeout text := current_setting('lock_timeout');
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN part;
    END IF;
    IF NOT pg_try_advisory_xact_lock(7262611) THEN
        RETURN NULL;
    END IF;
    BEGIN
        PERFORM set_config('lock_timeout', '100ms', true);
        part := gridmap_events_partition(month_start);
        PERFORM set_config('lock_timeout', old_timeout, true);
    EXCEPTION
        -- The block's work and its lock_timeout are rolled back together.
        WHEN lock_not_available OR deadlock_detected OR duplicate_table THEN
            RETURN NULL;
    END;
    RETURN part;
END
$$;

-- The partitions of every month in *months* (one call per write of events; never waits).
CREATE FUNCTION gridmap_events_ensure_partitions(months date[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    m date;
    created integer := 0;
BEGIN
    FOR m IN SELECT DISTINCT date_trunc('month', x)::date FROM unnest(months) AS u(x)
             WHERE x IS NOT NULL
    LOOP
        IF to_regclass(format('events_%s', to_char(m, 'YYYY_MM'))) IS NULL
           AND gridmap_events_try_partition(m) IS NOT NULL THEN
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;

-- Archive path (``gridmap db archive``, gridmap/batch/archive.py): the month's
-- partition is locked against writes while it is exported, then detached and
-- dropped; its events that are still open go back through the parent (into the
-- DEFAULT partition, as their month no longer has one). *expected* is the number
-- of events the archive wrote: any other number of archived rows aborts.
CREATE FUNCTION gridmap_events_lock_month(month_start date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    part text := format('events_%s', to_char(date_trunc('month', month_start), 'YYYY_MM'));
BEGIN
    IF to_regclass(part) IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('LOCK TABLE %I IN SHARE MODE', part);
    RETURN part;
END
$$;

CREATE FUNCTION gridmap_events_archive_month(
    month_start date, statuses text[], expected bigint
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    m date := date_trunc('month', month_start)::date;
    part text := format('events_%s', to_char(m, 'YYYY_MM'));
    lo timestamptz := m::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (m + interval '1 month')::timestamp AT TIME ZONE 'UTC';
    n bigint;
BEGIN
    IF to_regclass(part) IS NULL THEN
        DELETE FROM events_default
        WHERE reported_at >= lo AND reported_at < hi AND status = ANY (statuses);
        GET DIAGNOSTICS n = ROW_COUNT;
    ELSE
        EXECUTE format('SELECT count(*) FROM %I WHERE status = ANY ($1)', part)
            INTO n USING statuses;
        IF n = expected THEN
            EXECUTE format('ALTER TABLE events DETACH PARTITION %I', part);
            EXECUTE format(
                'INSERT INTO events SELECT * FROM %I '
                'WHERE status IS NULL OR NOT (status = ANY ($1))', part
            ) USING statuses;
            EXECUTE format('DROP TABLE %I', part);
        END IF;
    END IF;
    IF n <> expected THEN
        RAISE EXCEPTION 'archive of %: % closed events in the store, % exported', to_char(m, 'YYYY-MM'), n, expected
            USING ERRCODE = 'data_exception';
    END IF;
    RETURN n;
END
$$;

-- Partitions for the months present, then the rows (routed by month).
SELECT gridmap_events_partition(m.month)
FROM (
    SELECT DISTINCT date_trunc('month', reported_at AT TIME ZONE 'UTC')::date AS month
    FROM events_v7 WHERE reported_at IS NOT NULL
) m;
INSERT INTO events SELECT * FROM events_v7;

DROP TABLE events_v7;

ALTER TABLE events ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY;
SELECT setval(pg_get_serial_sequence('events', 'id'), coalesce(max(id), 0) + 1, false)
FROM events;

ALTER TABLE events ADD CONSTRAINT events_id_key UNIQUE (id, reported_at);
ALTER TABLE events ADD CONSTRAINT events_source_key_key
    UNIQUE NULLS NOT DISTINCT (source_key, reported_at);
CREATE INDEX events_geometry_gist ON events USING GIST (geometry);
CREATE INDEX events_grid_code_idx ON events ("grid_code");
CREATE INDEX events_reported_at_idx ON events ("reported_at");
CREATE INDEX events_status_idx ON events ("status");
CREATE INDEX events_duplicate_of_idx ON events ("duplicate_of");
CREATE INDEX events_source_id_idx ON events ("source_id");
CREATE INDEX events_grid_code_reported_at_idx ON events (grid_code, reported_at);

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
CREATE POLICY events_area ON events
    USING (gridmap_area_ok("grid_code")) WITH CHECK (gridmap_area_ok("grid_code"));
ALTER TABLE events_default ENABLE ROW LEVEL SECURITY;

GRANT SELECT, INSERT, UPDATE, DELETE ON events TO gridmap_app;
GRANT USAGE, SELECT ON SEQUENCE events_id_seq TO gridmap_app;
REVOKE ALL ON events_default FROM gridmap_app;
