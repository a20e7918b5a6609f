"""The lean report-intake path on PostGIS: two statements per report, two round trips.

The generic store calls cost a report about 30 statements (a temporary
staging table, a binary COPY, an insert and a drop per ``write``; a read per
``update``; catalog probes) and several DataFrame round trips through the
layer schema. Report intake (:func:`gridmap.events.intake.report_once`)
instead sends two statements, each committing by itself
(:meth:`~gridmap.storage.postgis.PostGISStore.one_statement`: no ``BEGIN`` or
``COMMIT`` round trips, and no connection held while Python builds the rows
between them):

1. :func:`prepare_report`: the next event id, the month's partition (once
   per month and process), and the open events near the point that could be
   the report's original (with the areas of the original each one links to);
2. :func:`insert_report`: one statement with data-modifying CTEs that claims
   the ``Idempotency-Key`` (``ON CONFLICT DO NOTHING``) together with its
   stored answer, and, only when the claim was made, inserts the event (its
   ``event_keys`` entry comes from the table's insert trigger, migration 016),
   its ``report`` transition (the audit record) and its webhook outbox rows —
   the last only when an active subscription wants the kind and covers the
   grid, checked in the same statement, so nothing is cached and nothing can
   go stale. Being one statement, it is stored whole or not at all.

A second request with the same key waits on the first one's uncommitted
claim and then inserts nothing: the report is stored exactly once. The
columns encrypted at rest (``events.reporter``, ``contact``) are encrypted
here with the store's vault, as :func:`gridmap.storage.fieldcrypt.seal` does.

Only a trusted :class:`~gridmap.storage.postgis.PostGISStore` (the schema
owner, which sees every area) takes this path (:func:`supports`); any other
store goes through the generic calls, with the same outcome.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from gridmap.common.model import layer_schema
from gridmap.storage.base import Store

if TYPE_CHECKING:
    from gridmap.storage.postgis import PostGISStore

__all__ = ["Candidate", "insert_report", "prepare_report", "supports"]

_SQL_TYPES = {
    "text": "text",
    "int": "int8",
    "float": "float8",
    "bool": "boolean",
    "timestamp": "timestamptz",
    "date": "date",
    "text[]": "text[]",
}
#: Months whose ``events`` partition this process made sure of, per database URL.
_MONTHS: set[tuple[str, dt.date]] = set()


@dataclass(frozen=True)
class Candidate:
    """An open event near a report: a possible original of it.

    ``target_areas`` are the grid, community and town codes of the event the
    report would link to (the candidate itself, or the original it links to;
    ``None`` when that event is no longer stored).
    """

    id: int
    duplicate_of: int | None
    lon: float
    lat: float
    target_areas: tuple[str | None, str | None, str | None] | None


def supports(store: Store) -> bool:
    """Whether *store* takes the lean path (a trusted PostGIS store).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> supports(open_store(":memory:", migrate=True))
    False
    """
    if getattr(store, "dialect", None) != "postgis":
        return False  # psycopg is imported only for a PostGIS store
    from gridmap.storage.postgis import PostGISStore

    return isinstance(store, PostGISStore) and store.trusted


def _pg(store: Store) -> PostGISStore:
    if not supports(store):  # pragma: no cover - callers check supports()
        raise TypeError("the lean intake path needs a trusted PostGIS store")
    return store  # type: ignore[return-value]


def prepare_report(
    store: Store,
    *,
    point: tuple[float, float],
    box: tuple[float, float, float, float],
    category: str,
    statuses: Sequence[str],
    since: pd.Timestamp,
    reported_at: pd.Timestamp,
) -> tuple[int, list[Candidate]]:
    """A new event id and the open events of *category* in *box* reported since *since*.

    Of those, the :data:`NEAREST` nearest *point* (longitude, latitude) are returned.

    One round trip (two the first time a month is seen by this process:
    its partition is created if missing), outside any transaction.
    """
    pg = _pg(store)
    month = dt.date(reported_at.year, reported_at.month, 1)
    if (pg.url, month) not in _MONTHS:
        pg.one_statement("SELECT gridmap_events_ensure_partitions(%s::date[])", ([month],))
        _MONTHS.add((pg.url, month))
    # Read-only but for nextval (a gap in the ids when sent twice): may be resent.
    row = pg.one_statement(
        _PREPARE, (*point, *box, category, list(statuses), since.to_pydatetime(), NEAREST)
    )
    assert row is not None
    found = row[1] or []
    return int(row[0]), [
        Candidate(
            int(c[0]),
            None if c[1] is None else int(c[1]),
            float(c[2]),
            float(c[3]),
            None if c[4] is None else (c[4][0], c[4][1], c[4][2]),
        )
        for c in found
    ]


#: The id, and the open events in the box nearest the point (at most :data:`NEAREST`),
#: found nearest first (migration 032): a hot spot can hold hundreds, and only the
#: nearest can be the original. The areas of the original a candidate links to are
#: looked up for those kept only (migration 033).
_PREPARE = (
    "SELECT nextval(pg_get_serial_sequence('events', 'id')), ("
    " SELECT json_agg(json_build_array(n.id, n.duplicate_of, n.x, n.y, CASE"
    "  WHEN n.duplicate_of IS NULL"
    "  THEN json_build_array(n.grid_code, n.community_code, n.town_code)"
    "  ELSE (SELECT json_build_array(o.grid_code, o.community_code, o.town_code)"
    "   FROM events o WHERE o.id = n.duplicate_of LIMIT 1) END)) FROM ("
    "  SELECT * FROM gridmap_open_events_near(%s, %s, %s, %s, %s, %s, %s, %s, %s) f"
    "  ORDER BY f.d, f.id LIMIT %s) n)"
)
#: How many of the nearest candidates are sent back (the caller measures them again).
NEAREST = 8


def _value(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime()
    if value is pd.NaT or value is pd.NA:
        return None
    return value


def _typed(layer: str, names: Sequence[str], prefix: str) -> list[str]:
    schema = layer_schema(layer)
    out = []
    for n in names:
        if n in ("id", "source_key"):
            kind = "int8" if n == "id" else "text"
        else:
            kind = _SQL_TYPES.get(schema.column(n).type, "text")
        out.append(f"%({prefix}{n})s::{kind}")
    return out


def insert_report(
    store: Store,
    *,
    claim: Mapping[str, Any] | None,
    event: Mapping[str, Any],
    lon: float,
    lat: float,
    transition: Mapping[str, Any],
    outbox: Sequence[Mapping[str, Any]] = (),
) -> bool:
    """Claim the key and store event, transition and outbox rows in one statement.

    Parameters
    ----------
    store : Store
        A store for which :func:`supports` is true. The statement commits by itself.
    claim : mapping or None
        The ``idempotency_keys`` row (``source_key``, ``principal``, ``key``,
        ``request_hash``, ``status_code``, ``response``, ``event_id``,
        ``created_at``); ``None`` stores without a key.
    event : mapping
        The ``events`` row, ``id`` and ``source_key`` included, clear values
        in the encrypted columns (encrypted here), H3 columns included.
    lon, lat : float
        The WGS84 point of the event.
    transition : mapping
        The ``event_transitions`` row (``event_id`` given).
    outbox : sequence of mapping
        ``webhook_outbox`` rows; each is written only when an active
        subscription wants its ``kind`` and covers its ``grid_code``.

    Returns
    -------
    bool
        ``False`` when the key was already claimed (nothing was written).
    """
    pg = _pg(store)
    schema = layer_schema("events")
    params: dict[str, Any] = {"lon": float(lon), "lat": float(lat)}
    ev = dict(event)
    for col in schema.columns:
        if col.encrypted and ev.get(col.name) is not None:
            ev[col.name] = pg.vault.encrypt(str(ev[col.name]), f"{schema.name}.{col.name}")
    ev_cols = tuple(c for c in ev if c not in ("id", "source_key", "geometry"))
    for c in ev_cols:
        params[f"e_{c}"] = _value(ev[c])
    params["e_id"], params["e_source_key"] = int(ev["id"]), str(ev["source_key"])
    if claim is not None:
        params.update({f"c_{c}": _value(v) for c, v in claim.items()})
    params.update({f"t_{c}": _value(v) for c, v in transition.items()})
    for i, box in enumerate(outbox):
        params.update({f"o{i}_{c}": _value(v) for c, v in box.items()})
    query, names = _insert_statement(
        None if claim is None else tuple(claim),
        ev_cols,
        tuple(c for c in transition if c != "source_key"),
        tuple(tuple(c for c in box if c != "source_key") for box in outbox),
    )
    # $n placeholders, the statement built once per shape: psycopg converts (and does
    # not cache) a %(name)s statement this long, with this many parameters, on every
    # call. Sent twice it changes nothing: the key is claimed, or the event id taken.
    done = pg.one_statement(query, [params[n] for n in names], raw=True)
    return bool(done and done[0])


_NAMED = re.compile(r"%\((\w+)\)s")


@functools.lru_cache(maxsize=64)
def _insert_statement(
    claim_cols: tuple[str, ...] | None,
    ev_cols: tuple[str, ...],
    tr_cols: tuple[str, ...],
    outbox_cols: tuple[tuple[str, ...], ...],
) -> tuple[bytes, tuple[str, ...]]:
    """The statement of :func:`insert_report` for one shape of rows, with ``$n`` placeholders.

    Returns the statement and the parameter name of each ``$n``, in order.
    """
    gate = " WHERE EXISTS (SELECT 1 FROM claim)" if claim_cols is not None else ""
    parts: list[str] = []
    if claim_cols is not None:
        parts.append(
            f"claim AS (INSERT INTO idempotency_keys ({', '.join(claim_cols)}) "
            f"VALUES ({', '.join(_typed('idempotency_keys', claim_cols, 'c_'))}) "
            "ON CONFLICT DO NOTHING RETURNING id)"
        )
    quoted = ", ".join(f'"{c}"' for c in ev_cols)
    values = ", ".join(_typed("events", ev_cols, "e_"))
    parts.append(
        f"ev AS (INSERT INTO events (id, source_key, {quoted}, geometry) "
        f"SELECT %(e_id)s::int8, %(e_source_key)s::text, {values}, "
        f"ST_SetSRID(ST_MakePoint(%(lon)s::float8, %(lat)s::float8), 4326){gate} RETURNING id)"
    )
    parts.append(
        f"tr AS (INSERT INTO event_transitions (source_key, {', '.join(tr_cols)}) "
        f"SELECT %(t_source_key)s::text, "
        f"{', '.join(_typed('event_transitions', tr_cols, 't_'))} FROM ev RETURNING id)"
    )
    for i, cols in enumerate(outbox_cols):
        parts.append(
            f"ob{i} AS (INSERT INTO webhook_outbox (source_key, {', '.join(cols)}) "
            f"SELECT %(o{i}_source_key)s::text, "
            f"{', '.join(_typed('webhook_outbox', cols, f'o{i}_'))} FROM ev "
            "WHERE EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.active "
            f"AND %(o{i}_kind)s::text = ANY(s.event_types) "
            "AND ('' = ANY(s.areas) OR EXISTS (SELECT 1 FROM unnest(s.areas) a "
            f"WHERE a <> '' AND %(o{i}_grid_code)s::text ^@ a))) RETURNING id)"
        )
    query = "WITH " + ", ".join(parts) + " SELECT (SELECT count(*) FROM ev)"
    order: dict[str, int] = {}

    def number(m: re.Match[str]) -> str:
        return f"${order.setdefault(m.group(1), len(order) + 1)}"

    return _NAMED.sub(number, query).encode(), tuple(order)
