"""Back up a store to one file and restore it: ``gridmap backup OUT`` / ``gridmap restore IN``.

* **PostGIS**: ``pg_dump -Fc --schema=public`` of the gridmap objects (tables,
  sequences, indexes, functions, triggers, row-level security policies and
  grants; the PostGIS extension itself is not dumped, it must exist in the
  target database). The restore is **one transaction** run by ``psql
  --single-transaction``: it drops the gridmap objects in place, recreates the
  application role ``gridmap_app`` if the cluster lacks it, and replays the
  dump (``pg_restore -f -``); an error leaves the database as it was. The
  Debian client binaries are taken from ``GRIDMAP_PG_BIN`` (default
  ``/usr/lib/postgresql/15/bin``), the same major version as the server.
* **DuckDB**: the database file itself, copied after a ``CHECKPOINT`` while the
  store's writer lock is held, so the copy is consistent and keeps everything
  (spatial columns, R-tree and other indexes, sequences, migrations). The
  restore checks the backup opens as a gridmap store, checkpoints the target
  (so no write-ahead log is left to replay onto the new file) and swaps the
  file in with one atomic rename. Nothing else may have the file open.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from gridmap.common.errors import BadInput, NotFound

__all__ = ["backup", "restore"]

#: Drop every gridmap object of schema ``public`` that is not part of an
#: extension (PostGIS stays), then make sure the application role exists.
_WIPE_SQL = r"""
SET client_min_messages = warning;
DO $$
DECLARE r record;
BEGIN
    -- Default privileges would grant more on the recreated tables than the
    -- dump says (e.g. DELETE on the append-only audit log): the dump's own
    -- ``DEFAULT ACL`` entries are replayed after the tables instead.
    FOR r IN
        SELECT pg_get_userbyid(d.defaclrole) AS owner, d.defaclobjtype AS kind, a.grantee
        FROM pg_default_acl d, aclexplode(d.defaclacl) a
        WHERE d.defaclnamespace = 'public'::regnamespace
    LOOP
        EXECUTE format(
            'ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public REVOKE ALL ON %s FROM %s',
            r.owner,
            CASE r.kind WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES'
                        WHEN 'f' THEN 'FUNCTIONS' ELSE 'TYPES' END,
            CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END);
    END LOOP;
    FOR r IN
        SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND NOT c.relispartition
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.deptype = 'e')
    LOOP
        EXECUTE format(
            CASE r.relkind WHEN 'v' THEN 'DROP VIEW IF EXISTS %s CASCADE'
                           WHEN 'm' THEN 'DROP MATERIALIZED VIEW IF EXISTS %s CASCADE'
                           WHEN 'f' THEN 'DROP FOREIGN TABLE IF EXISTS %s CASCADE'
                           ELSE 'DROP TABLE IF EXISTS %s CASCADE' END, r.name);
    END LOOP;
    FOR r IN
        SELECT c.oid::regclass AS name FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'S'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.deptype = 'e')
    LOOP
        EXECUTE format('DROP SEQUENCE IF EXISTS %s CASCADE', r.name);
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure AS sig FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                            AND d.deptype = 'e')
    LOOP
        EXECUTE format('DROP ROUTINE IF EXISTS %s CASCADE', r.sig);
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gridmap_app') THEN
        CREATE ROLE gridmap_app NOLOGIN NOSUPERUSER NOINHERIT NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
RESET client_min_messages;
"""


#: After the dump: the grants migration 004 gave the application role on the
#: PostGIS tables and views of ``public`` (extension members are not dumped,
#: so a restore into a new database would lack them).
_AFTER_SQL = r"""
DO $$
DECLARE r record;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS name FROM pg_class c
        JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.deptype = 'e'
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v')
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO gridmap_app', r.name);
    END LOOP;
END
$$;
"""


def _pg_bin(name: str) -> str:
    from gridmap.storage.pgserver import PG_BIN

    path = PG_BIN / name
    if not path.exists():
        raise BadInput(
            f"{name} not found at {path}: install postgresql-client-15 or set GRIDMAP_PG_BIN",
            field="GRIDMAP_PG_BIN",
        )
    return str(path)


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


def _duckdb_path(url: str) -> Path:
    path = url.removeprefix("duckdb://")
    if url.startswith("duckdb:///") and path.startswith("//"):
        path = path[1:]
    if path == ":memory:":
        raise BadInput("an in-memory store has nothing to back up or restore", field="url")
    return Path(path)


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise BadInput(f"{what} failed: {' | '.join(msg[-3:])[:500]}", field="backup")


def backup(url: str, out: str | os.PathLike[str]) -> Path:
    """Write a backup of the store at *url* to the file *out*; return its path.

    Parameters
    ----------
    url : str
        Store URL (as for :func:`gridmap.storage.open_store`).
    out : str or PathLike
        Backup file to write (replaced if it exists; written beside it first).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from gridmap.storage import open_store
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> open_store(f"duckdb:///{folder / 'a.duckdb'}", migrate=True).close()
    >>> backup(f"duckdb:///{folder / 'a.duckdb'}", folder / "a.bak").stat().st_size > 0
    True
    """
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    if _is_postgres(url):
        url = url.replace("postgresql+psycopg://", "postgresql://")
        _run(
            [_pg_bin("pg_dump"), "--format=custom", "--schema=public", f"--file={part}", url],
            "pg_dump",
        )
    else:
        from gridmap.storage.duckdb import DuckDBStore

        path = _duckdb_path(url)
        if not path.exists():
            raise NotFound(f"no store at {path}")
        store = DuckDBStore(path)
        try:
            store.copy_file(part)
        finally:
            store.close()
    os.replace(part, target)
    return target


def restore(url: str, backup_file: str | os.PathLike[str]) -> None:
    """Replace the contents of the store at *url* with the backup *backup_file*.

    All or nothing: on PostGIS one transaction, on DuckDB one atomic rename
    after the backup was checked to open.
    """
    src = Path(backup_file)
    if not src.is_file():
        raise NotFound(f"no backup file {src}")
    if _is_postgres(url):
        _restore_postgis(url.replace("postgresql+psycopg://", "postgresql://"), src)
    else:
        from gridmap.storage.duckdb import DuckDBStore

        DuckDBStore.replace_file(_duckdb_path(url), src)


def _restore_postgis(url: str, src: Path) -> None:
    listing = subprocess.run(
        [_pg_bin("pg_restore"), "--list", str(src)], capture_output=True, text=True
    )
    if listing.returncode != 0:
        raise BadInput(f"{src.name} is not a pg_dump archive: {listing.stderr.strip()[:300]}")
    # The public schema itself (its comment and grants) belongs to the database.
    keep = [ln for ln in listing.stdout.splitlines() if " SCHEMA - public " not in ln]
    work = Path(tempfile.mkdtemp(prefix="gridmap-restore-"))
    try:
        toc, wipe, script = work / "toc.list", work / "wipe.sql", work / "restore.sql"
        after = work / "after.sql"
        toc.write_text("\n".join(keep) + "\n", encoding="utf-8")
        wipe.write_text(_WIPE_SQL, encoding="utf-8")
        after.write_text(_AFTER_SQL, encoding="utf-8")
        # The whole script is written (and checked) before anything is changed.
        _run(
            [
                _pg_bin("pg_restore"),
                "--no-owner",
                f"--use-list={toc}",
                f"--file={script}",
                str(src),
            ],
            "pg_restore",
        )
        _run(
            [
                _pg_bin("psql"),
                "--no-psqlrc",
                "--quiet",
                "--single-transaction",
                "--set=ON_ERROR_STOP=1",
                f"--dbname={url}",
                f"--file={wipe}",
                f"--file={script}",
                f"--file={after}",
            ],
            "restore (the database is unchanged)",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
