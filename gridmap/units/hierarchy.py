"""The administrative hierarchy and its codes (区划代码): list, recode, rename, move, close.

Codes follow the national pattern: a 6-digit county (city) code, 3 digits for
the town or street (9 in all), 3 for the community or village (12), 3 for the
grid (15). Everything below a unit carries its code as a prefix: its child
units, its grids, the buildings, events, households and residents of those
grids, the users' and the grid workers' areas. :func:`set_code` changes a
code everywhere it appears, in one transaction, and refuses a code already in
use; :func:`close` ends a unit's validity and keeps the row (history).

Units imported from OpenStreetMap without a code table have codes such as
``osm-relation-2220206``; :func:`allocate_codes` gives them valid 9- and 12-digit
codes under a town prefix in a stable order (north → south, west → east, as
grid numbers run), and :func:`import_code_table` sets the official codes of
a code table (区划代码, 名称, 上级代码) on the units whose names match within
their parent.

Examples
--------
>>> import geopandas as gpd, shapely
>>> from gridmap.storage import open_store
>>> store = open_store(":memory:", migrate=True)
>>> box = shapely.MultiPolygon([shapely.box(120.0, 36.0, 120.1, 36.1)])
>>> _ = store.write("admin_units", gpd.GeoDataFrame(
...     {"code": ["osm-relation-1", "osm-relation-2"], "name": ["城关街道", "东关社区"],
...      "level": ["town", "community"], "parent_code": [None, "osm-relation-1"],
...      "source_id": ["r1", "r2"]}, geometry=[box, box], crs=4326))
>>> set_code(store, "osm-relation-1", "370285001").changed["admin_units"]
2
>>> set_code(store, "osm-relation-2", "370285001001").changed["admin_units"]
1
>>> [(u.code, u.parent_code) for u in list_units(store)]
[('370285001', None), ('370285001001', '370285001')]
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.common.errors import BadInput, NotFound
from gridmap.security import audit
from gridmap.security.access import SYSTEM, Principal
from gridmap.storage import Store

__all__ = [
    "CASCADE",
    "LEVEL_DIGITS",
    "CodeCollision",
    "CodeTableReport",
    "Recode",
    "Unit",
    "allocate_codes",
    "check_town_prefix",
    "close_unit",
    "import_code_table",
    "list_units",
    "read_code_table",
    "rename_unit",
    "set_code",
    "set_parent",
    "spatial_order",
]

#: Digits of a unit's code by level.
LEVEL_DIGITS: dict[str, int] = {"city": 6, "town": 9, "community": 12}
_LEVEL_OF_DIGITS = {v: k for k, v in LEVEL_DIGITS.items()}
_RANK = {"city": 0, "town": 1, "community": 2}

#: Every text column that holds a hierarchy code, by layer. :func:`set_code`
#: rewrites them all; ``text[]`` columns (``workers.grid_codes``, ``users.areas``)
#: are listed in :data:`_LIST_COLUMNS`.
CASCADE: dict[str, tuple[str, ...]] = {
    "admin_units": ("code", "parent_code"),
    "grids": ("code", "community_code"),
    "buildings": ("grid_code",),
    "key_areas": ("community_code",),
    "events": ("grid_code", "community_code", "town_code", "reporter_grid_code"),
    "patrol_routes": ("grid_code",),
    "patrol_tracks": ("grid_code",),
    "households": ("grid_code",),
    "residents": ("grid_code",),
    "doorknock_campaigns": ("area_code",),
    "doorknock_visits": ("grid_code",),
    "workers": ("area_code",),
}
_LIST_COLUMNS: dict[str, str] = {"workers": "grid_codes", "users": "areas"}


class CodeCollision(BadInput):
    """The new code (or a code below it) is in use already (400)."""

    code = "code_collision"


@dataclass(frozen=True)
class Unit:
    """One administrative unit as :func:`list_units` shows it."""

    id: int
    code: str
    name: str | None
    level: str | None
    kind: str | None
    parent_code: str | None
    valid_to: pd.Timestamp | None
    children: int
    grids: int

    @property
    def in_force(self) -> bool:
        """True while the unit is not closed."""
        return self.valid_to is None


@dataclass(frozen=True)
class Recode:
    """What :func:`set_code` changed: rows per layer (``text[]`` rows included)."""

    old: str
    new: str
    changed: dict[str, int]

    @property
    def total(self) -> int:
        """Rows changed in all layers."""
        return sum(self.changed.values())


# ----------------------------------------------------------------------------- reading


def _frame(x: gpd.GeoDataFrame | pd.DataFrame) -> gpd.GeoDataFrame:
    assert isinstance(x, gpd.GeoDataFrame)
    return x


def _in_force(units: pd.DataFrame) -> pd.DataFrame:
    if "valid_to" not in units or units.empty:
        return units
    return units[units["valid_to"].isna().to_numpy()]


def _text(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else str(v)


def list_units(
    store: Store, *, level: str | None = None, closed: bool = False, under: str | None = None
) -> list[Unit]:
    """The administrative units, ordered by code (closed ones only with *closed*).

    Parameters
    ----------
    level : str, optional
        ``city``, ``town`` or ``community``.
    closed : bool
        Also list closed units.
    under : str, optional
        Only units whose code starts with this prefix.
    """
    if level is not None and level not in LEVEL_DIGITS:
        raise BadInput(f"level must be one of {', '.join(LEVEL_DIGITS)}", field="level")
    units = store.read("admin_units", where={"level": level} if level else None)
    if not closed:
        units = _in_force(units)
    if under:
        units = units[units["code"].astype("string").str.startswith(under).fillna(False)]
    grids = store.read("grids", where={"valid_to": None})
    per_comm = grids["community_code"].astype("string").value_counts().to_dict()
    live = _in_force(store.read("admin_units"))
    per_parent = live["parent_code"].astype("string").value_counts().to_dict()
    out = [
        Unit(
            id=int(r["id"]),
            code=str(r["code"]),
            name=_text(r["name"]),
            level=_text(r["level"]),
            kind=_text(r["kind"]),
            parent_code=_text(r["parent_code"]),
            valid_to=None if pd.isna(r["valid_to"]) else pd.Timestamp(r["valid_to"]),
            children=int(per_parent.get(str(r["code"]), 0)),
            grids=int(per_comm.get(str(r["code"]), 0)),
        )
        for _, r in units.iterrows()
    ]
    return sorted(out, key=lambda u: (u.code, u.valid_to is None, u.id))


def _unit(store: Store, code: str) -> pd.Series:
    """The unit in force with *code* (``NotFound`` otherwise)."""
    if not isinstance(code, str) or not code or len(code) > 64:
        raise BadInput("a unit code is 1–64 characters", field="code")
    units = _in_force(store.read("admin_units", where={"code": code}))
    if units.empty:
        raise NotFound(f"no administrative unit in force has code {code!r}")
    if len(units) > 1:
        raise BadInput(
            f"{len(units)} units in force share code {code!r}; give each its own code first",
            field="code",
        )
    row: pd.Series = units.iloc[0]
    return row


def _check_code(code: str, level: str | None, *, field: str = "code") -> str:
    want = LEVEL_DIGITS.get(level or "")
    if not (isinstance(code, str) and code.isascii() and code.isdigit()):
        raise BadInput(f"{field} must be digits, got {code[:40]!r}", field=field)
    if want is None:
        if len(code) not in _LEVEL_OF_DIGITS:
            raise BadInput(f"{field} must have 6, 9 or 12 digits", field=field)
    elif len(code) != want:
        raise BadInput(
            f"a {level} code has {want} digits (county 6 + town 3 + community 3), got {len(code)}",
            field=field,
        )
    return code


# ----------------------------------------------------------------------------- set-code


def _prefix_mode(code: str) -> bool:
    """Codes of the national pattern are prefixes of everything below them."""
    return code.isascii() and code.isdigit() and len(code) in _LEVEL_OF_DIGITS


def _placeholder(store: Store) -> str:
    return "?" if store.dialect == "duckdb" else "%s"


def _recode_table(store: Store, table: str, columns: Sequence[str], old: str, new: str) -> int:
    """Rewrite *old* → *new* in *columns* of *table* (one statement); return rows changed.

    Codes of the national pattern are replaced as prefixes (the subtree
    moves with its root); other codes (``osm-relation-…``) only where equal.
    """
    ph = _placeholder(store)
    sets, conds, set_params, cond_params = [], [], [], []
    for col in columns:
        q = f'"{col}"'
        if _prefix_mode(old):
            sets.append(
                f"{q} = CASE WHEN starts_with({q}, {ph}) "
                f"THEN CAST({ph} AS TEXT) || substr({q}, CAST({ph} AS INTEGER)) ELSE {q} END"
            )
            set_params += [old, new, len(old) + 1]
            conds.append(f"starts_with({q}, {ph})")
        else:
            sets.append(f"{q} = CASE WHEN {q} = {ph} THEN CAST({ph} AS TEXT) ELSE {q} END")
            set_params += [old, new]
            conds.append(f"{q} = {ph}")
        cond_params.append(old)
    where = " OR ".join(conds)
    sql: Any = store.sql  # type: ignore[attr-defined]  # both stores have it
    row = sql(f"SELECT count(*) FROM {table} WHERE {where}", cond_params)
    n = int(row[0][0]) if row else 0
    if n:
        sql(f"UPDATE {table} SET {', '.join(sets)} WHERE {where}", [*set_params, *cond_params])
    return n


def _recode_value(value: str, old: str, new: str) -> str:
    if _prefix_mode(old):
        return new + value[len(old) :] if value.startswith(old) else value
    return new if value == old else value


def _recode_lists(store: Store, layer: str, column: str, old: str, new: str) -> int:
    """Rewrite codes inside a ``text[]`` column (users' areas, workers' grids)."""
    frame = store.read(layer)
    ids, values = [], []
    for rid, items in zip(frame["id"], frame[column], strict=True):
        if items is None or (isinstance(items, float) and np.isnan(items)):
            continue
        items = [str(x) for x in items]
        changed = [_recode_value(x, old, new) for x in items]
        if changed != items:
            ids.append(int(rid))
            values.append(changed)
    if ids:
        store.update(layer, pd.DataFrame({"id": ids, column: pd.Series(values, dtype=object)}))
    return len(ids)


def _check_free(store: Store, old: str, new: str) -> None:
    """Refuse *new* when it, or a code below it, is in use (by a unit or a grid)."""
    ph = _placeholder(store)
    sql: Any = store.sql  # type: ignore[attr-defined]
    for table in ("admin_units", "grids"):
        rows = sql(f'SELECT "code" FROM {table} WHERE starts_with("code", {ph}) LIMIT 1', [new])
        if rows:
            raise CodeCollision(
                f"code {new} is in use already ({table} {rows[0][0]}); "
                "choose another or recode that one first",
                field="new",
            )
    if _prefix_mode(old) and new.startswith(old):
        raise CodeCollision(f"{new} lies below {old} itself", field="new")


def set_code(
    store: Store,
    old: str,
    new: str,
    *,
    principal: Principal = SYSTEM,
) -> Recode:
    """Change a unit's code to *new*, everywhere it appears, in one transaction.

    The unit's own row, its child units (their codes and ``parent_code``), the
    grids (codes and ``community_code``), buildings, key areas, events,
    patrol routes and tracks, households, residents, door-knocking campaigns
    and visits, the ``workers`` layer and the users' areas follow (see
    :data:`CASCADE`). Closed rows (history) are recoded too, so past events
    keep pointing at their grid.

    Parameters
    ----------
    old : str
        The code of a unit in force: a 6/9/12-digit code, or any code an
        import gave (``osm-relation-2220206``).
    new : str
        A code of the unit's level: 6 (city), 9 (town) or 12 (community)
        digits, used nowhere yet.

    Raises
    ------
    gridmap.common.errors.NotFound
        No unit in force has *old*.
    CodeCollision
        *new*, or a code below it, is in use.
    gridmap.common.errors.BadInput
        *new* is not a code of the unit's level.
    """
    unit = _unit(store, old)
    level = _text(unit["level"])
    _check_code(new, level, field="new")
    if new == old:
        return Recode(old, new, {})
    changed: dict[str, int] = {}
    with store.transaction():
        _check_free(store, old, new)
        for table, columns in CASCADE.items():
            n = _recode_table(store, table, columns, old, new)
            if n:
                changed[table] = n
        for layer, column in _LIST_COLUMNS.items():
            n = _recode_lists(store, layer, column, old, new)
            if n:
                changed[layer] = changed.get(layer, 0) + n
        parent = new[:-3] if len(new) > 6 else None
        if parent and parent != str(unit["parent_code"] or "") and _has_unit(store, parent):
            # The code says who the parent is: follow it when that unit exists.
            store.update(
                "admin_units", pd.DataFrame({"id": [int(unit["id"])], "parent_code": [parent]})
            )
        audit.record(
            store,
            principal,
            "unit.set_code",
            f"admin_units:{new}",
            {"old": old, **changed},
            area=new,
        )
    return Recode(old, new, changed)


def _has_unit(store: Store, code: str) -> bool:
    return not _in_force(store.read("admin_units", where={"code": code})).empty


# ----------------------------------------------------------------------------- rename etc.


def rename_unit(
    store: Store,
    code: str,
    name: str,
    *,
    name_en: str | None = None,
    principal: Principal = SYSTEM,
) -> Unit:
    """Give the unit in force *code* a new name (and English name)."""
    clean = " ".join(unicodedata.normalize("NFC", str(name)).split())
    if not clean or len(clean) > 100 or any(c in clean for c in "<>\x00"):
        raise BadInput("a unit name is 1–100 characters without markup", field="name")
    unit = _unit(store, code)
    change: dict[str, Any] = {"id": [int(unit["id"])], "name": [clean]}
    if name_en is not None:
        change["name_en"] = [" ".join(str(name_en).split()) or None]
    with store.transaction():
        store.update("admin_units", pd.DataFrame(change))
        audit.record(
            store, principal, "unit.rename", f"admin_units:{code}", {"name": clean}, area=code
        )
    return _listed(store, code)


def set_parent(store: Store, code: str, parent: str, *, principal: Principal = SYSTEM) -> Unit:
    """Make the unit in force *parent* (of a higher level) the parent of *code*."""
    unit = _unit(store, code)
    up = _unit(store, parent)
    rank, up_rank = _RANK.get(str(unit["level"])), _RANK.get(str(up["level"]))
    if rank is None or up_rank is None or up_rank >= rank:
        raise BadInput(
            f"the parent of a {unit['level']} must be a unit of a higher level "
            f"({parent} is a {up['level']})",
            field="parent",
        )
    with store.transaction():
        store.update(
            "admin_units", pd.DataFrame({"id": [int(unit["id"])], "parent_code": [parent]})
        )
        audit.record(
            store,
            principal,
            "unit.set_parent",
            f"admin_units:{code}",
            {"parent": parent},
            area=code,
        )
    return _listed(store, code)


def close_unit(
    store: Store,
    code: str,
    *,
    now: pd.Timestamp | None = None,
    principal: Principal = SYSTEM,
) -> Unit:
    """Close a unit (``valid_to = now``); its row stays (history), and so do its grids'.

    A unit with child units in force is refused (close or move them first);
    a community's grids in force are closed with it.
    """
    unit = _unit(store, code)
    children = _in_force(store.read("admin_units", where={"parent_code": code}))
    if len(children):
        shown = ", ".join(str(c) for c in children["code"][:5])
        raise BadInput(
            f"{code} has {len(children)} unit(s) in force below it ({shown}); "
            "close or move them first (set-parent)",
            field="code",
        )
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    grids = store.read("grids", where={"community_code": code, "valid_to": None})
    with store.transaction():
        store.update("admin_units", pd.DataFrame({"id": [int(unit["id"])], "valid_to": [now]}))
        if len(grids):
            store.update("grids", pd.DataFrame({"id": grids["id"].astype(int), "valid_to": now}))
        audit.record(
            store, principal, "unit.close", f"admin_units:{code}", {"grids": len(grids)}, area=code
        )
    return next(u for u in list_units(store, closed=True) if u.id == int(unit["id"]))


def _listed(store: Store, code: str) -> Unit:
    return next(u for u in list_units(store) if u.code == code)


# ----------------------------------------------------------------------------- allocation


def spatial_order(geometries: gpd.GeoSeries, *, row_m: float = 200.0) -> np.ndarray:
    """Positions of *geometries* north → south, then west → east (like grid numbers).

    Representative points are binned in rows of *row_m* metres (local UTM),
    so that units side by side are numbered west to east.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> g = gpd.GeoSeries([shapely.box(120.01, 36.0, 120.02, 36.01),
    ...                    shapely.box(120.0, 36.0, 120.005, 36.01),
    ...                    shapely.box(120.0, 36.1, 120.01, 36.11)], crs=4326)
    >>> spatial_order(g).tolist()
    [2, 1, 0]
    """
    from gridmap.geo.projection import to_metric

    if len(geometries) == 0:
        return np.zeros(0, dtype=np.int64)
    points, _ = to_metric(gpd.GeoSeries(geometries.representative_point(), crs=geometries.crs))
    x = shapely.get_x(np.asarray(points.values))
    y = shapely.get_y(np.asarray(points.values))
    row = np.floor((y.max() - y) / row_m)
    return np.lexsort((x, row))


def _next_free(used: set[str], prefix: str, start: int = 1) -> str:
    for n in range(start, 1000):
        code = f"{prefix}{n:03d}"
        if code not in used:
            used.add(code)
            return code
    raise BadInput(f"no free 3-digit number left under {prefix}", field="town_prefix")


def check_town_prefix(prefix: str) -> str:
    """*prefix* if it is a 6-digit county or 9-digit town code (``BadInput`` otherwise).

    Examples
    --------
    >>> check_town_prefix("370285001")
    '370285001'
    """
    if not (
        isinstance(prefix, str)
        and prefix.isascii()
        and prefix.isdigit()
        and len(prefix) in (6, 9)
        and prefix[0] != "0"
        and (len(prefix) == 6 or prefix[6:] != "000")
    ):
        raise BadInput(
            "--town-prefix is a 6-digit county code or a 9-digit town code, e.g. 370285001",
            field="town_prefix",
        )
    return prefix


def allocate_codes(
    units: gpd.GeoDataFrame, prefix: str, *, used: Iterable[str] = ()
) -> tuple[gpd.GeoDataFrame, dict[str, str]]:
    """Valid 6/9/12-digit codes and parent codes for imported units, in a stable order.

    Units that have a valid code of their level under the county of *prefix*
    keep it. Towns without one are numbered from *prefix* (a 9-digit prefix is
    the first town's code; a 6-digit one starts the towns at 001);
    communities get their town's code plus 001, 002, … north → south, west →
    east (:func:`spatial_order`); a community with no town above it goes under
    the first town of the prefix. The city gets the 6-digit county code.

    Parameters
    ----------
    units : GeoDataFrame
        ``admin_units`` rows (``code``, ``level``, ``parent_code``).
    prefix : str
        6 (county) or 9 (first town) digits, e.g. ``"370285001"``.
    used : iterable of str
        Codes taken already (units stored before), never handed out again.

    Returns
    -------
    (GeoDataFrame, dict)
        The units with new ``code`` and ``parent_code``, and old → new codes.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> u = gpd.GeoDataFrame({"code": ["osm-relation-9", "osm-relation-7", "osm-relation-8"],
    ...     "level": ["town", "community", "community"],
    ...     "parent_code": [None, "osm-relation-9", "osm-relation-9"]},
    ...     geometry=[shapely.box(0, 0, 1, 1), shapely.box(0.5, 0, 1, 0.4),
    ...               shapely.box(0, 0.5, 0.4, 1)], crs=4326)
    >>> out, renamed = allocate_codes(u, "370285001")
    >>> out[["code", "parent_code"]].values.tolist()
    [['370285001', None], ['370285001002', '370285001'], ['370285001001', '370285001']]
    """
    check_town_prefix(prefix)
    county = prefix[:6]
    first_town = int(prefix[6:9]) if len(prefix) == 9 else 1
    out = units.copy()
    codes = out["code"].astype(object).where(out["code"].notna(), None).tolist()
    parents = out["parent_code"].astype(object).where(out["parent_code"].notna(), None).tolist()
    levels = out["level"].astype(object).tolist()
    taken = {str(c) for c in used if c}
    renamed: dict[str, str] = {}

    def valid(code: Any, level: str) -> bool:
        return _valid_code(code, level, county)

    order = spatial_order(gpd.GeoSeries(out.geometry.values, crs=out.crs))
    for level in ("city", "town", "community"):
        for i in order:
            if levels[i] == level and valid(codes[i], level):
                taken.add(str(codes[i]))
    for i in order:  # the city
        if levels[i] == "city" and not valid(codes[i], "city"):
            renamed[str(codes[i])] = county
            codes[i] = county
    for i in order:  # towns
        if levels[i] == "town" and not valid(codes[i], "town"):
            new = _next_free(taken, county, first_town)
            renamed[str(codes[i])] = new
            codes[i] = new
    towns = [str(codes[i]) for i in order if levels[i] == "town"]
    default_town = towns[0] if towns else f"{county}{first_town:03d}"
    for i in order:  # communities, town by town
        if levels[i] != "community" or valid(codes[i], "community"):
            continue
        town = renamed.get(str(parents[i]), parents[i])
        if not valid(town, "town"):
            town = default_town
        new = _next_free(taken, str(town))
        renamed[str(codes[i])] = new
        codes[i] = new
    parents = _new_parents(parents, codes, levels, renamed, county)
    out["code"] = pd.Series(codes, index=out.index, dtype=object)
    out["parent_code"] = pd.Series(parents, index=out.index, dtype=object)
    return out, renamed


def _valid_code(code: Any, level: str, county: str) -> bool:
    """Whether *code* is a code of *level* under *county*."""
    return (
        isinstance(code, str)
        and code.isascii()
        and code.isdigit()
        and len(code) == LEVEL_DIGITS[level]
        and code.startswith(county)
    )


def _new_parents(
    parents: list[Any],
    codes: list[Any],
    levels: list[Any],
    renamed: dict[str, str],
    county: str,
) -> list[Any]:
    """Parent codes after :func:`allocate_codes` renamed units (and filled missing ones)."""
    has_city = any(lv == "city" for lv in levels)
    out = list(parents)
    for i, p in enumerate(parents):
        if p is not None and str(p) in renamed:
            out[i] = renamed[str(p)]
        elif levels[i] == "community" and (p is None or not _valid_code(p, "town", county)):
            out[i] = str(codes[i])[:9] if _valid_code(codes[i], "community", county) else p
        elif levels[i] == "town" and (p is None or not _valid_code(p, "city", county)):
            out[i] = county if has_city else p
    return out


# ----------------------------------------------------------------------------- code tables

_CODE_NAMES = ("区划代码", "行政区划代码", "统计用区划代码", "code", "adcode", "代码")
_NAME_NAMES = ("名称", "区划名称", "单位名称", "name")
_PARENT_NAMES = ("上级代码", "上级区划代码", "parent_code", "parent", "上级")
_SUFFIXES = ("办事处", "居民委员会", "村民委员会", "居委会", "村委会")


@dataclass
class CodeTableReport:
    """What :func:`import_code_table` did.

    ``rows`` has one row per table row (``row`` is the spreadsheet row
    number, the header being row 1) with ``code``, ``name``, ``status``
    (``matched``, ``unchanged`` or ``unmatched``), ``unit`` (the code the
    unit had) and ``reason``.
    """

    path: str
    rows: pd.DataFrame
    recodes: list[Recode] = field(default_factory=list)

    @property
    def matched(self) -> int:
        """Rows whose unit was found (recoded or already right)."""
        return int(self.rows["status"].isin(["matched", "unchanged"]).sum())

    @property
    def unmatched(self) -> int:
        """Rows no unit was found for."""
        return int((self.rows["status"] == "unmatched").sum())


def _pick(columns: Iterable[Any], names: Sequence[str]) -> str | None:
    low = {str(c).strip().lower(): c for c in columns}
    for n in names:
        if n.lower() in low:
            return str(low[n.lower()])
    return None


def read_code_table(path: str | Path) -> pd.DataFrame:
    """A code table (CSV or XLSX) as ``row``, ``code``, ``name``, ``parent_code`` (text).

    Columns are found by their usual names: 区划代码/行政区划代码/code,
    名称/区划名称/name, 上级代码/上级区划代码/parent_code. Codes are read as
    text (leading zeros kept).
    """
    from gridmap.io.tables import read_sheet

    table = read_sheet(path)
    code_col = _pick(table.columns, _CODE_NAMES)
    name_col = _pick(table.columns, _NAME_NAMES)
    if code_col is None or name_col is None:
        raise BadInput(
            f"{Path(path).name}: a code table needs the columns 区划代码 (code) and 名称 (name); "
            f"it has {', '.join(map(str, table.columns[:12]))}",
            field="file",
        )
    parent_col = _pick(table.columns, _PARENT_NAMES)
    out = pd.DataFrame({"row": table["row"]})
    out["code"] = table[code_col].map(_cell)
    out["name"] = table[name_col].map(_cell)
    out["parent_code"] = table[parent_col].map(_cell) if parent_col else None
    return out


def _cell(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    text = unicodedata.normalize("NFKC", str(v)).strip()
    return text or None


def _name_key(name: Any) -> str:
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(name or "")))
    for suffix in _SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
            break
    return text


def import_code_table(
    store: Store, path: str | Path, *, principal: Principal = SYSTEM
) -> CodeTableReport:
    """Set the codes of a code table (区划代码, 名称, 上级代码) on the matching units.

    Rows are taken top-down (county, town, community codes). A row matches the
    unit in force of its level whose name is the same (ignoring spaces,
    full-width forms and suffixes such as 办事处, 居委会, 村委会) under the unit
    matched for its parent code (the code's first digits when the table has
    no 上级代码); a row whose parent is not in the table matches by name (and
    by the stored parent code when names repeat); a county row by name alone.
    Every matched unit gets the table's code through :func:`set_code`, all in
    one transaction; the other rows are reported with the reason.
    """
    table = read_code_table(path)
    units = _in_force(store.read("admin_units")).reset_index(drop=True)
    state = _Matcher(
        ids=[int(i) for i in units["id"]],
        codes=[str(c) for c in units["code"]],
        parents=[_text(c) for c in units["parent_code"]],
        levels=[_text(c) for c in units["level"]],
        keys=[_name_key(n) for n in units["name"]],
    )
    records = sorted(
        table.to_dict("records"),
        key=lambda r: (len(r["code"]) if r["code"] else 99, int(r["row"])),
    )
    outcome = {int(r["row"]): state.match(r) for r in records}
    recodes: list[Recode] = []
    with store.transaction():
        for unit_id, new in state.plan:
            current = str(store.read("admin_units", ids=[unit_id])["code"].iat[0])
            recodes.append(set_code(store, current, new, principal=principal))
    rows = table.assign(
        status=[outcome[int(r)][0] for r in table["row"]],
        unit=pd.Series([outcome[int(r)][1] for r in table["row"]], index=table.index, dtype=object),
        reason=[outcome[int(r)][2] for r in table["row"]],
    )
    return CodeTableReport(str(path), rows, recodes)


@dataclass
class _Matcher:
    """The units as they will be once the rows matched so far are applied."""

    ids: list[int]
    codes: list[str]
    parents: list[str | None]
    levels: list[str | None]
    keys: list[str]
    by_table: dict[str, int] = field(default_factory=dict)
    plan: list[tuple[int, str]] = field(default_factory=list)

    def match(self, rec: Mapping[Any, Any]) -> tuple[str, str | None, str]:
        """(status, the unit's code before, reason) of one table row."""
        code, name, parent = rec["code"], rec["name"], rec["parent_code"]
        if not code or not (code.isascii() and code.isdigit()) or len(code) not in _LEVEL_OF_DIGITS:
            return ("unmatched", None, "区划代码 must have 6, 9 or 12 digits")
        if not name:
            return ("unmatched", None, "no 名称 (name)")
        level = _LEVEL_OF_DIGITS[len(code)]
        parent = parent or (code[:-3] if len(code) > 6 else None)
        taken = set(self.by_table.values())
        found = [
            i
            for i in range(len(self.codes))
            if self.levels[i] == level and self.keys[i] == _name_key(name) and i not in taken
        ]
        if level != "city":
            under = self.by_table.get(parent or "")
            if under is not None:  # the parent's row matched: within it only
                found = [i for i in found if self.parents[i] == self.codes[under]]
            elif len(found) > 1:  # else the parent code, if it tells them apart
                found = [i for i in found if (self.parents[i] or "") == (parent or "")]
        if not found:
            where = f" under {parent}" if parent and level != "city" else ""
            return ("unmatched", None, f"no {level} named {name!r}{where}")
        if len(found) > 1:
            shown = ", ".join(self.codes[i] for i in found[:4])
            return ("unmatched", None, f"{len(found)} units named {name!r}: {shown}")
        i = found[0]
        before = self.codes[i]
        self.by_table[code] = i
        if before == code:
            return ("unchanged", before, "")
        clash = [j for j, c in enumerate(self.codes) if j != i and c.startswith(code)]
        if clash:
            self.by_table.pop(code)
            return ("unmatched", before, f"code {code} is held by unit {self.codes[clash[0]]}")
        self.plan.append((self.ids[i], code))
        for j in range(len(self.codes)):  # later rows see the hierarchy as it will be
            p = self.parents[j]
            if p is not None:
                self.parents[j] = _recode_value(p, before, code)
            if j != i and _prefix_mode(before):
                self.codes[j] = _recode_value(self.codes[j], before, code)
        self.codes[i] = code
        return ("matched", before, f"{before} → {code}")
