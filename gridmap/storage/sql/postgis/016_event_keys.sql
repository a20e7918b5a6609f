-- v16 (issue 11): one source key, one event, across every month.
--
-- Since 008 ``events`` is partitioned by month and its unique keys must include
-- the partition key: ``(source_key, reported_at)``. The store's write skipped keys
-- stored in another month with a ``NOT EXISTS`` probe, which two concurrent
-- writers of one key with different report times could both pass (each saw only
-- committed rows), storing the event twice.
--
-- ``event_keys`` is not partitioned, so its primary key is one unique index over
-- all months. The store's staged insert first claims its keys here, in key order
-- (``gridmap_event_keys_claim``: ``INSERT … ON CONFLICT DO NOTHING RETURNING``),
-- and inserts only the rows whose key it claimed. A second writer of the same key
-- waits on the first one's uncommitted key, then finds it taken and inserts
-- nothing (or takes it, if the first rolled back). Claiming in key order means
-- two writers of overlapping batches wait for each other without deadlocking.
--
-- The table holds exactly the source keys of ``events``:
-- * ``events_keys_insert`` (AFTER INSERT, per statement) adds the keys of rows
--   inserted any other way: the bulk COPY into an empty table, SQL by hand, the
--   archive putting a month's open events back. Keys already there (the staged
--   insert claimed them) are left as they are.
-- * ``events_keys_delete`` (AFTER DELETE, per statement) removes the keys of
--   deleted rows (``store.delete``, ``write(mode="replace")``) unless another
--   row still holds the key; ``events_keys_truncate`` empties it with ``events``.
-- * ``events_keys_update`` (AFTER UPDATE OF source_key, per row) follows a key
--   changed by hand; no gridmap code changes a source key. An update that also
--   moves the row to another month runs as delete + insert in PostgreSQL and
--   fires no statement-level INSERT/DELETE trigger: such a change is not followed
--   (the report time is immutable in gridmap).
-- * ``gridmap_events_archive_month`` (redefined below) removes the keys of the
--   events it archives, as it removes the events: re-importing an archived event
--   stores it again, as it did before this migration.
-- * Moving rows between partitions (``gridmap_events_partition``) and restoring a
--   backup (the table is dumped with the others) change no key.
-- Statement-level triggers fire for statements on ``events`` itself, not on one of
-- its partitions: the functions of 008 that touch partitions directly keep the
-- table in step themselves.
--
-- Internal bookkeeping like ``schema_migrations``: not a layer (never read through
-- the store, the API or the lake), and ``gridmap_app`` holds no privilege on it;
-- the functions and triggers that write it are SECURITY DEFINER.

-- The backfill must see every area's events (FORCE ROW LEVEL SECURITY binds the
-- owner too); the setting ends with the migration's transaction.
SELECT set_config('gridmap.areas', '*', true);

CREATE TABLE event_keys (source_key text COLLATE "C" PRIMARY KEY);

-- Existing events; a key stored twice before this migration (the race above)
-- becomes one row here, and both events stay.
INSERT INTO event_keys (source_key)
SELECT DISTINCT source_key FROM events WHERE source_key IS NOT NULL;

REVOKE ALL ON event_keys FROM PUBLIC;
REVOKE ALL ON event_keys FROM gridmap_app;

-- Claim *keys* for the caller's transaction: the keys it took (not stored yet and
-- not claimed by another transaction that then committed), in key order.
CREATE FUNCTION gridmap_event_keys_claim(keys text[]) RETURNS SETOF text
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO event_keys (source_key)
    SELECT DISTINCT k COLLATE "C" FROM unnest(keys) AS u(k)
    WHERE k IS NOT NULL
    ORDER BY 1
    ON CONFLICT DO NOTHING
    RETURNING source_key
$$;

CREATE FUNCTION gridmap_event_keys_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO event_keys (source_key)
    SELECT DISTINCT source_key FROM new_events WHERE source_key IS NOT NULL
    ORDER BY 1
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE FUNCTION gridmap_event_keys_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    DELETE FROM event_keys k
    USING (SELECT DISTINCT source_key FROM old_events) o
    WHERE k.source_key = o.source_key
      AND NOT EXISTS (SELECT 1 FROM events e WHERE e.source_key = o.source_key);
    RETURN NULL;
END
$$;

CREATE FUNCTION gridmap_event_keys_truncated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    TRUNCATE event_keys;
    RETURN NULL;
END
$$;

CREATE FUNCTION gridmap_event_keys_updated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM events e WHERE e.source_key = OLD.source_key) THEN
        DELETE FROM event_keys WHERE source_key = OLD.source_key;
    END IF;
    IF NEW.source_key IS NOT NULL THEN
        INSERT INTO event_keys (source_key) VALUES (NEW.source_key) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_keys_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_event_keys_inserted();
CREATE TRIGGER events_keys_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS old_events
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_event_keys_deleted();
CREATE TRIGGER events_keys_truncate AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_event_keys_truncated();
CREATE TRIGGER events_keys_update AFTER UPDATE OF source_key ON events
    FOR EACH ROW WHEN (OLD.source_key IS DISTINCT FROM NEW.source_key)
    EXECUTE FUNCTION gridmap_event_keys_updated();

-- 008's archive, plus the keys: the archived (closed) events' keys leave with
-- them, taken out before the partition is detached (which locks all of events),
-- while the month is locked against writes only. The month's open events go back
-- through the parent and keep theirs.
CREATE OR REPLACE FUNCTION gridmap_events_archive_month(
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
        -- No partition: the month's rows sit in DEFAULT; a DELETE there fires no
        -- trigger of the parent, so the keys go here.
        WITH gone AS (
            DELETE FROM events_default
            WHERE reported_at >= lo AND reported_at < hi AND status = ANY (statuses)
            RETURNING source_key
        ), counted AS (
            DELETE FROM event_keys k USING gone g WHERE k.source_key = g.source_key
        )
        SELECT count(*) INTO n FROM gone;
    ELSE
        EXECUTE format('SELECT count(*) FROM %I WHERE status = ANY ($1)', part)
            INTO n USING statuses;
        IF n = expected THEN
            EXECUTE format(
                'DELETE FROM event_keys k USING %I p '
                'WHERE k.source_key = p.source_key AND p.status = ANY ($1)', part
            ) USING statuses;
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
