"""Door-knocking campaigns (敲门行动): visits per household and progress by area.

A campaign covers an area (a town, community or grid code) for a time
window. Grid workers record visits to registered households (the
``households`` table of :mod:`gridmap.population.registry`), each with an outcome —
``visited`` (已走访), ``verified`` (已核实: base data checked) or
``mobilised`` (已动员) — the time, and where it happened. A household's
progress is its best outcome so far (mobilised > verified > visited).

Progress of a grid = households visited / households in the grid, where the
households in a grid are the grid's estimate (``grids.households``) until the
register covers it (at least as many households registered as estimated),
then the registered ones; the column ``households_source`` says which. So a
grid where 4 of an estimated 300 households are registered and visited shows
4 / 300, not 100 %.

A visit's place must lie in the household's grid (within
:data:`VISIT_TOLERANCE_M` for GPS error); visits are personal data (a home
point and a worker's whereabouts): :func:`list_visits` serves them to staff
only, masked by default (worker ``张*``, place rounded to about 100 m),
every read audited. :func:`progress_records` hides small counts for roles
without detail rights (:mod:`gridmap.assessment.disclosure`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Unpack

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.assessment.disclosure import needs_hiding, protect_table
from gridmap.common.errors import BadInput, NotFound, OutsideJurisdiction
from gridmap.common.settings import DEFAULT_MIN_COUNT
from gridmap.common.timeparse import parse_instant
from gridmap.geo.projection import to_metric
from gridmap.security import audit
from gridmap.security.access import SYSTEM, Principal
from gridmap.security.auth import PermissionDenied
from gridmap.security.privacy import mask_name
from gridmap.storage import AllOf, Cmp, Prefix, Store, open_store

__all__ = [
    "PROGRESS_COLUMNS",
    "VISIT_STATUSES",
    "VISIT_TOLERANCE_M",
    "Visit",
    "VisitFilter",
    "campaign_progress",
    "create_campaign",
    "example_campaign",
    "get_campaign",
    "grid_households",
    "list_campaigns",
    "list_visits",
    "parse_campaign",
    "parse_visit",
    "progress_grids",
    "progress_records",
    "progress_table",
    "read_visits",
    "record_visit",
    "visits_where",
]

#: How far outside the household's grid a visit may be recorded (GPS error, edge houses).
VISIT_TOLERANCE_M = 150.0

#: Visit outcomes, in increasing order of progress, with zh-CN and English names.
VISIT_STATUSES: dict[str, tuple[str, str]] = {
    "visited": ("已走访", "Visited"),
    "verified": ("已核实", "Verified"),
    "mobilised": ("已动员", "Mobilised"),
}
_RANK = {code: i + 1 for i, code in enumerate(VISIT_STATUSES)}
_ORGANISERS = frozenset({"city_admin", "town_coordinator", "community_staff"})
_VISITORS = _ORGANISERS | {"grid_worker"}
PROGRESS_COLUMNS: tuple[str, ...] = (
    "households",
    "households_source",
    "visited",
    "verified",
    "mobilised",
    "progress",
    "verified_share",
    "mobilised_share",
    "accuracy_checked",
    "accuracy_correct",
    "data_accuracy",
    "satisfaction_asked",
    "satisfaction_yes",
    "satisfaction",
    "visit_ids",
)


def _utc(value: Any, name: str) -> pd.Timestamp:
    return parse_instant(value, field=name, tz="UTC")


def _area_code(code: Any) -> str:
    if not (
        isinstance(code, str) and code.isascii() and code.isdigit() and len(code) in (9, 12, 15)
    ):
        raise BadInput(
            "area_code must be a town (9), community (12) or grid (15) code", field="area_code"
        )
    return code


def create_campaign(
    store: Store,
    principal: Principal,
    *,
    name: str,
    area_code: str,
    starts_at: Any,
    ends_at: Any,
) -> dict[str, Any]:
    """Create a door-knocking campaign over *area_code*; return it.

    Raises
    ------
    PermissionDenied
        When the principal does not organise campaigns or the area is not theirs.
    BadInput
        For a bad name, code or time window.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> s = open_store(":memory:", migrate=True)
    >>> c = create_campaign(s, SYSTEM, name="十一月敲门行动", area_code="990100001",
    ...                     starts_at="2026-11-01T00:00Z", ends_at="2026-12-01T00:00Z")
    >>> c["id"], c["area_code"]
    (1, '990100001')
    """
    code = _area_code(area_code)
    if principal.role not in _ORGANISERS or not principal.covers(code):
        raise PermissionDenied(f"{principal.name!r} may not organise a campaign in {code}")
    label = " ".join(str(name).split())
    if not label or len(label) > 200 or any(c in label for c in "<>"):
        raise BadInput("name must be 1–200 characters without markup", field="name")
    start, end = _utc(starts_at, "starts_at"), _utc(ends_at, "ends_at")
    if end <= start:
        raise BadInput("ends_at must be later than starts_at", field="ends_at")
    key = f"campaign:{code}:{start.isoformat()}:{label}"
    row = pd.DataFrame(
        {
            "source_key": [key],
            "name": [label],
            "area_code": [code],
            "starts_at": [start],
            "ends_at": [end],
            "created_by": [principal.name],
            "created_at": [pd.Timestamp(dt.datetime.now(dt.UTC))],
        }
    )
    store.write("doorknock_campaigns", row)
    stored = store.read("doorknock_campaigns", where={"area_code": code, "name": label})
    return _campaign_record(stored.iloc[-1])


def example_campaign() -> tuple[Store, dict[str, Any]]:
    """A new in-memory store holding one campaign, to try this module's functions on.

    The campaign, 敲门, covers town 990100001 for November 2026 and has no
    visits yet; the store has no grids or households.

    Examples
    --------
    >>> store, campaign = example_campaign()
    >>> campaign["name"], campaign["area_code"], campaign["starts_at"]
    ('敲门', '990100001', '2026-11-01T00:00:00+00:00')
    """
    store = open_store(":memory:", migrate=True)
    campaign = create_campaign(
        store,
        SYSTEM,
        name="敲门",
        area_code="990100001",
        starts_at="2026-11-01",
        ends_at="2026-12-01",
    )
    return store, campaign


def _campaign_record(row: pd.Series) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "name": str(row["name"]),
        "area_code": str(row["area_code"]),
        "starts_at": pd.Timestamp(row["starts_at"]).isoformat(),
        "ends_at": pd.Timestamp(row["ends_at"]).isoformat(),
    }


def _campaign(store: Store, campaign_id: int) -> pd.Series:
    if not 0 < int(campaign_id) < 2**63:
        raise NotFound(f"no door-knocking campaign {campaign_id}")
    rows = store.read("doorknock_campaigns", ids=[int(campaign_id)])
    if len(rows) == 0:
        raise NotFound(f"no door-knocking campaign {campaign_id}")
    row: pd.Series = rows.iloc[0]
    return row


def _overlaps(principal: Principal, area: str) -> bool:
    """Whether *area* and the principal's areas overlap (either contains the other)."""
    return principal.covers(area) or any(a.startswith(area) for a in principal.areas)


def get_campaign(store: Store, principal: Principal, campaign_id: int) -> dict[str, Any]:
    """One campaign whose area overlaps the principal's (``NotFound`` otherwise).

    Examples
    --------
    >>> s, c = example_campaign()
    >>> get_campaign(s, Principal("w", "grid_worker", ("990100002001001",)), c["id"])
    Traceback (most recent call last):
    gridmap.common.errors.NotFound: no door-knocking campaign 1
    """
    row = _campaign(store, campaign_id)
    if not _overlaps(principal, str(row["area_code"])):
        raise NotFound(f"no door-knocking campaign {campaign_id}")
    return _campaign_record(row)


def list_campaigns(
    store: Store, principal: Principal, *, area: str | None = None
) -> list[dict[str, Any]]:
    """Campaigns overlapping the principal's areas (and *area*, if given), by id.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> list_campaigns(open_store(":memory:", migrate=True), SYSTEM)
    []
    """
    if area is not None:
        if not (isinstance(area, str) and area.isascii() and area.isdigit()):
            raise BadInput("area must be a 6, 9, 12 or 15 digit code", field="area")
        if len(area) not in (6, 9, 12, 15):
            raise BadInput("area must be a 6, 9, 12 or 15 digit code", field="area")
    rows = store.read("doorknock_campaigns")
    out = []
    for _, row in rows.iterrows():
        code = str(row["area_code"])
        if not _overlaps(principal, code):
            continue
        if area is not None and not (code.startswith(area) or area.startswith(code)):
            continue
        out.append(_campaign_record(row))
    return out


@dataclass(frozen=True)
class Visit:
    """One visit to a household: who, which outcome, when, where and the answers.

    Attributes
    ----------
    household_id : int
        The household (``households.id``).
    status : str
        ``visited``, ``verified`` or ``mobilised``.
    at : time
        When (within the campaign's window).
    lon, lat : float
        Where (WGS84).
    data_correct : bool, optional
        For a verification: whether the registered base data proved correct.
    satisfied : bool, optional
        The resident's answer to the satisfaction question (满意度).
    note : str, optional
        Free text (no personal data).
    """

    household_id: int
    status: Literal["visited", "verified", "mobilised"] | str
    at: Any
    lon: float
    lat: float
    data_correct: bool | None = None
    satisfied: bool | None = None
    note: str | None = None


def record_visit(
    store: Store,
    principal: Principal,
    *,
    campaign_id: int,
    visit: Visit,
) -> dict[str, Any]:
    """Record a visit to a registered household in a campaign; return it.

    Recording the same outcome for the same household twice stores it once.

    Parameters
    ----------
    store : Store
        Holds the campaign and the household registry.
    principal : Principal
        The visitor; must cover the household's grid.
    campaign_id : int
        The campaign.
    visit : Visit
        The household, outcome, time, place and answers.

    Raises
    ------
    NotFound
        Unknown campaign, or a household not registered in the principal's areas.
    BadInput
        Bad outcome, time outside the window, household outside the campaign area.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> record_visit(open_store(":memory:", migrate=True), SYSTEM, campaign_id=1,
    ...              visit=Visit(1, "visited", at="2026-11-02", lon=24.9, lat=60.2))
    Traceback (most recent call last):
    gridmap.common.errors.NotFound: no door-knocking campaign 1
    """
    household_id, status, lon, lat = visit.household_id, visit.status, visit.lon, visit.lat
    note = visit.note
    if principal.role not in _VISITORS:
        raise PermissionDenied(f"role {principal.role!r} may not record visits")
    if status not in VISIT_STATUSES:
        raise BadInput(f"status must be one of {', '.join(VISIT_STATUSES)}", field="status")
    camp = _campaign(store, campaign_id)
    when = _utc(visit.at, "at")
    if not pd.Timestamp(camp["starts_at"]) <= when < pd.Timestamp(camp["ends_at"]):
        raise BadInput("the visit time lies outside the campaign's window", field="at")
    if not (np.isfinite(lon) and np.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadInput("lon/lat must be WGS84 degrees", field="location")
    if note is not None and (len(note) > 500 or any(c in note for c in "<>")):
        raise BadInput("note must be at most 500 characters without markup", field="note")
    with store.scoped(principal.areas):
        hh = store.read(
            "households", ids=[int(household_id)], where={"grid_code": Prefix(principal.areas)}
        )
        if len(hh) == 0:
            raise NotFound(f"household {household_id} not found in your areas")
        grid = str(hh["grid_code"].iloc[0])
        if not grid.startswith(str(camp["area_code"])):
            raise BadInput(
                f"household {household_id} is outside the campaign's area", field="household"
            )
        _check_place(store, grid, float(lon), float(lat))
        frame = gpd.GeoDataFrame(
            {
                "source_key": [f"visit:{int(campaign_id)}:{int(household_id)}:{status}"],
                "campaign_id": [int(campaign_id)],
                "household_id": [int(household_id)],
                "grid_code": [grid],
                "worker": [principal.name],
                "status": [status],
                "visited_at": [when],
                "data_correct": [visit.data_correct],
                "satisfied": [visit.satisfied],
                "note": [note],
            },
            geometry=[shapely.Point(float(lon), float(lat))],
            crs=4326,
        )
        written = store.write("doorknock_visits", frame)
        rows = store.read(
            "doorknock_visits",
            where={
                "campaign_id": int(campaign_id),
                "household_id": int(household_id),
                "status": status,
            },
        )
    row = rows.iloc[0]
    return {
        "id": int(row["id"]),
        "campaign_id": int(campaign_id),
        "household_id": int(household_id),
        "grid_code": grid,
        "worker": str(row["worker"]),
        "status": status,
        "visited_at": pd.Timestamp(row["visited_at"]).isoformat(),
        "created": written.inserted == 1,
    }


def _check_place(store: Store, grid: str, lon: float, lat: float) -> None:
    """Refuse a visit place farther than :data:`VISIT_TOLERANCE_M` from *grid*."""
    grids = store.read("grids", where={"code": grid})
    if len(grids) == 0 or not isinstance(grids, gpd.GeoDataFrame):
        return  # a household registered before its grid's boundary: nothing to check
    if "valid_to" in grids:
        current = grids[grids["valid_to"].isna()]
        grids = current if len(current) else grids
    shape = grids.geometry.iloc[-1]
    metric, _ = to_metric(gpd.GeoSeries([shape, shapely.Point(lon, lat)], crs=4326))
    gap = float(metric.iloc[0].distance(metric.iloc[1]))
    if not np.isfinite(gap) or gap > VISIT_TOLERANCE_M:
        raise OutsideJurisdiction(
            f"the visit location lies {gap:,.0f} m outside grid {grid} "
            f"(at most {VISIT_TOLERANCE_M:.0f} m is accepted); send WGS84 [lon, lat]",
            field="location",
        )


class VisitFilter(TypedDict, total=False):
    """Which visits :func:`read_visits` reads; every key may be left out (or None).

    Attributes
    ----------
    area : str
        One area code (a visit counts only if the principal covers it).
    campaign_id : int
        One campaign.
    start, end : Timestamp
        The window ``start <= visited_at < end``, either side open.
    """

    area: str | None
    campaign_id: int | None
    start: pd.Timestamp | None
    end: pd.Timestamp | None


def visits_where(principal: Principal, **filters: Unpack[VisitFilter]) -> dict[str, Any]:
    """The store filter of :func:`read_visits` (shown in reports as the figure's query).

    Examples
    --------
    >>> from gridmap.security.access import SYSTEM
    >>> visits_where(SYSTEM, area="990100001")
    {'grid_code': Prefix(prefixes=('990100001',))}
    """
    area, campaign_id = filters.get("area"), filters.get("campaign_id")
    start, end = filters.get("start"), filters.get("end")
    prefixes = tuple(principal.areas)
    if area is not None:
        prefixes = (area,) if principal.covers(area) else ()
    where: dict[str, Any] = {}
    if area is not None or not principal.sees_everything:
        where["grid_code"] = Prefix(prefixes)
    if campaign_id is not None:
        where["campaign_id"] = int(campaign_id)
    bounds = []
    if start is not None:
        bounds.append(Cmp(">=", start.to_pydatetime()))
    if end is not None:
        bounds.append(Cmp("<", end.to_pydatetime()))
    if bounds:
        where["visited_at"] = AllOf(tuple(bounds))
    return where


def read_visits(store: Store, principal: Principal, **filters: Unpack[VisitFilter]) -> pd.DataFrame:
    """Visits in the principal's areas, narrowed by *filters* (see :class:`VisitFilter`).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> len(read_visits(open_store(":memory:", migrate=True), SYSTEM))
    0
    """
    where = visits_where(principal, **filters)
    with store.scoped(principal.areas):
        rows = store.read("doorknock_visits", where=where)
    return pd.DataFrame(rows.drop(columns="geometry", errors="ignore"))


def progress_table(
    households: pd.DataFrame, visits: pd.DataFrame, *, by: str = "grid"
) -> pd.DataFrame:
    """Door-knocking progress per grid, community or town.

    Parameters
    ----------
    households : DataFrame
        One row per grid: ``grid_code``, ``households`` and
        ``households_source`` (``registry`` or ``estimate``).
    visits : DataFrame
        Rows of ``doorknock_visits`` (``id``, ``household_id``, ``grid_code``,
        ``status``, ``data_correct``, ``satisfied``).
    by : {"grid", "community", "town"}
        Grouping; communities and towns are the 12- and 9-digit code prefixes.

    Returns
    -------
    DataFrame
        Index *by*; columns :data:`PROGRESS_COLUMNS`. Shares are NaN where
        their denominator is 0; ``visit_ids`` lists the visits counted.

    Examples
    --------
    >>> hh = pd.DataFrame({"grid_code": ["990100001001001"], "households": [4],
    ...                    "households_source": ["registry"]})
    >>> v = pd.DataFrame({"id": [1, 2, 3], "household_id": [7, 7, 8],
    ...                   "grid_code": ["990100001001001"] * 3,
    ...                   "status": ["visited", "verified", "visited"],
    ...                   "data_correct": [None, True, None], "satisfied": [True, None, False]})
    >>> t = progress_table(hh, v, by="town")
    >>> int(t.loc["990100001", "visited"]), float(t.loc["990100001", "progress"])
    (2, 0.5)
    >>> float(t.loc["990100001", "satisfaction"]), t.loc["990100001", "visit_ids"]
    (0.5, [1, 2, 3])
    """
    width = {"grid": 15, "community": 12, "town": 9}
    if by not in width:
        raise BadInput("by must be grid, community or town", field="by")
    n = width[by]
    hh = households.assign(key=households["grid_code"].astype(str).str[:n])
    base = hh.groupby("key").agg(
        households=("households", "sum"),
        households_source=(
            "households_source",
            lambda s: (
                "registry"
                if set(s) == {"registry"}
                else "mixed"
                if "registry" in set(s)
                else "estimate"
            ),
        ),
    )
    v = visits.copy()
    if v.empty:
        v = pd.DataFrame(
            {c: pd.Series(dtype=object) for c in ("id", "household_id", "grid_code", "status")}
        )
    v["key"] = v["grid_code"].astype(str).str[:n]
    v["rank"] = v["status"].map(_RANK).fillna(0).astype(int)
    best = v.groupby(["key", "household_id"])["rank"].max().reset_index()
    counts = pd.DataFrame(
        {
            "visited": best.groupby("key")["rank"].apply(lambda r: int((r >= 1).sum())),
            "verified": best.groupby("key")["rank"].apply(lambda r: int((r >= 2).sum())),
            "mobilised": best.groupby("key")["rank"].apply(lambda r: int((r >= 3).sum())),
        }
    )
    checked = pd.Series(v.get("data_correct"), index=v.index, dtype="boolean")
    answered = pd.Series(v.get("satisfied"), index=v.index, dtype="boolean")
    answers = (
        pd.DataFrame(
            {
                "key": v["key"],
                "accuracy_checked": checked.notna().astype(int),
                "accuracy_correct": checked.fillna(False).astype(int),
                "satisfaction_asked": answered.notna().astype(int),
                "satisfaction_yes": answered.fillna(False).astype(int),
            }
        )
        .groupby("key")
        .sum()
    )
    ids = v.groupby("key")["id"].apply(lambda s: sorted(int(i) for i in s))
    out = base.join(counts, how="outer").join(answers, how="outer")
    out["households_source"] = out["households_source"].fillna("estimate")
    for col in _COUNTS:
        out[col] = out[col].fillna(0).astype(int) if col in out else 0

    def share(num: str, den: str) -> pd.Series:
        d = out[den].astype(float)
        return (out[num].astype(float) / d.where(d > 0)).astype(float)

    out["progress"] = share("visited", "households")
    out["verified_share"] = share("verified", "households")
    out["mobilised_share"] = share("mobilised", "households")
    out["data_accuracy"] = share("accuracy_correct", "accuracy_checked")
    out["satisfaction"] = share("satisfaction_yes", "satisfaction_asked")
    out["visit_ids"] = [ids.get(k, []) for k in out.index]
    out.index = out.index.rename(by)
    return out[list(PROGRESS_COLUMNS)].sort_index()


def grid_households(
    store: Store, principal: Principal, *, area: str, as_of: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Households per grid of *area*: the estimate until the register covers the grid.

    A grid's households are its registered ones once there are at least as
    many as the grid's estimate (``grids.households``), or when it has no
    estimate; until then the estimate (so a few registered households never
    make a grid look done). Progress is therefore never above
    visited / estimated.

    Parameters
    ----------
    as_of : Timestamp, optional
        Count the households registered before this time (default: all).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> grid_households(open_store(":memory:", migrate=True), SYSTEM, area="990100001").empty
    True
    """
    where: dict[str, Any] = {"grid_code": Prefix((area,) if principal.covers(area) else ())}
    with store.scoped(principal.areas):
        grids = store.read("grids", where={"code": where["grid_code"]})
        if as_of is not None:
            where["created_at"] = Cmp("<", as_of.to_pydatetime())
        registered = store.read("households", where=where)
    counts = registered.groupby("grid_code").size() if len(registered) else pd.Series(dtype=int)
    codes = sorted(set(grids["code"].astype(str)) | set(counts.index.astype(str)))
    estimate = (
        pd.to_numeric(grids.set_index("code")["households"], errors="coerce")
        if len(grids)
        else pd.Series(dtype=float)
    )
    estimate = estimate[~estimate.index.duplicated(keep="last")]
    rows = []
    for code in codes:
        n = int(counts[code]) if code in counts.index else 0
        est = estimate.get(code, np.nan)
        est = 0 if pd.isna(est) else int(est)
        if n > 0 and n >= est:
            rows.append((code, n, "registry"))
        else:
            rows.append((code, est, "estimate"))
    return pd.DataFrame(rows, columns=["grid_code", "households", "households_source"])


def campaign_progress(
    store: Store,
    principal: Principal,
    *,
    campaign_id: int,
    by: Literal["grid", "community", "town"] | str = "grid",
) -> pd.DataFrame:
    """Progress of one campaign by grid, community or town (see :func:`progress_table`).

    Examples
    --------
    >>> from gridmap.security.access import SYSTEM
    >>> s, c = example_campaign()
    >>> campaign_progress(s, SYSTEM, campaign_id=c["id"]).empty
    True
    """
    camp = _campaign(store, campaign_id)
    area = str(camp["area_code"])
    if not _overlaps(principal, area):
        raise NotFound(f"no door-knocking campaign {campaign_id}")
    scope = area
    if not principal.covers(area):  # a worker of one grid in a town-wide campaign
        scope = next(a for a in principal.areas if a.startswith(area))
    hh = grid_households(store, principal, area=scope)
    visits = read_visits(store, principal, area=scope, campaign_id=campaign_id)
    return progress_table(hh, visits, by=by)


def _round_place(geom: Any, unmask: bool) -> dict[str, Any] | None:
    if geom is None or getattr(geom, "is_empty", True):
        return None
    digits = 7 if unmask else 3  # 3 decimals: about 100 m, no door singled out
    return {"type": "Point", "coordinates": [round(geom.x, digits), round(geom.y, digits)]}


def list_visits(
    store: Store,
    principal: Principal,
    *,
    campaign_id: int,
    grid: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    unmask: bool = False,
) -> dict[str, Any]:
    """Visits of a campaign in the principal's areas, masked unless *unmask* (audited).

    Masking: another worker's name keeps its first character (``张*``), the
    place is rounded to 3 decimals (about 100 m) and notes of others are
    left out. ``unmask`` needs the unmask permission; every read and every
    unmask is written to the audit log.

    Raises
    ------
    PermissionDenied
        For roles without access to personal data, or *unmask* without the right.
    NotFound
        Unknown campaign, or *grid* outside the principal's areas.

    Examples
    --------
    >>> from gridmap.security.access import SYSTEM
    >>> s, c = example_campaign()
    >>> list_visits(s, SYSTEM, campaign_id=c["id"])["visits"]
    []
    """
    if not principal.sees_personal_data:
        raise PermissionDenied(f"role {principal.role!r} may not see door-knocking visits")
    if unmask and not principal.can_unmask:
        raise PermissionDenied("you may not unmask personal data")
    if status is not None and status not in VISIT_STATUSES:
        raise BadInput(f"status must be one of {', '.join(VISIT_STATUSES)}", field="status")
    if not (0 < int(limit) <= 1000 and 0 <= int(offset) <= 10_000_000):
        raise BadInput("limit must be 1–1000 and offset 0–10000000", field="limit")
    camp = get_campaign(store, principal, campaign_id)
    if grid is not None and not principal.covers(grid):
        raise NotFound(f"grid {grid} not found in your areas")
    prefixes = (grid,) if grid is not None else tuple(principal.areas)
    where: dict[str, Any] = {"campaign_id": int(camp["id"]), "grid_code": Prefix(prefixes)}
    if status is not None:
        where["status"] = status
    with store.scoped(principal.areas):
        rows = store.read("doorknock_visits", where=where, limit=int(limit), offset=int(offset))
        ids = [int(i) for i in rows["id"]] if len(rows) else []
        area = audit.area_of(rows["grid_code"]) if len(rows) else grid
        audit.record(
            store,
            principal,
            "personal.read",
            f"doorknock_visits:campaign:{int(camp['id'])}",
            {"count": len(ids)},
            area=area,
        )
        if unmask and ids:
            audit.record(store, principal, "personal.unmask", f"doorknock_visits:{ids}", area=area)
    visits = []
    for _, row in rows.iterrows():
        own = str(row["worker"]) == principal.name
        note = row.get("note")
        visits.append(
            {
                "id": int(row["id"]),
                "campaign_id": int(row["campaign_id"]),
                "household_id": int(row["household_id"]),
                "grid_code": str(row["grid_code"]),
                "worker": str(row["worker"]) if own or unmask else mask_name(str(row["worker"])),
                "status": str(row["status"]),
                "visited_at": pd.Timestamp(row["visited_at"]).isoformat(),
                "data_correct": None if pd.isna(row["data_correct"]) else bool(row["data_correct"]),
                "satisfied": None if pd.isna(row["satisfied"]) else bool(row["satisfied"]),
                "note": (None if note is None or pd.isna(note) else str(note))
                if own or unmask
                else None,
                "location": _round_place(row.geometry, unmask),
            }
        )
    return {"visits": visits, "count": len(visits), "masked": not unmask}


#: Count columns of a progress table and the pairs whose difference is a count too.
_COUNTS = (
    "households",
    "visited",
    "verified",
    "mobilised",
    "accuracy_checked",
    "accuracy_correct",
    "satisfaction_asked",
    "satisfaction_yes",
)
_PAIRS = (
    ("households", "visited"),
    ("visited", "verified"),
    ("verified", "mobilised"),
    ("accuracy_checked", "accuracy_correct"),
    ("satisfaction_asked", "satisfaction_yes"),
)
_RATES = {
    "progress": ("visited", "households"),
    "verified_share": ("verified", "households"),
    "mobilised_share": ("mobilised", "households"),
    "data_accuracy": ("accuracy_correct", "accuracy_checked"),
    "satisfaction": ("satisfaction_yes", "satisfaction_asked"),
}
_PARENT = {"grid": 12, "community": 9, "town": 6}


def progress_records(
    table: pd.DataFrame,
    principal: Principal,
    *,
    k: int = DEFAULT_MIN_COUNT,
) -> list[dict[str, Any]]:
    """JSON rows of a :func:`progress_table`, small counts hidden for roles without detail rights.

    Staff get every figure and the ids of the visits counted. Viewers and
    external systems get counts from 1 to *k* − 1 as ``"<k"``, the cells that
    would let them be derived as ``"*"`` and the rates built on them as
    ``None`` (rules in :mod:`gridmap.assessment.disclosure`), and no visit ids.

    Examples
    --------
    >>> hh = pd.DataFrame({"grid_code": ["990100001001001", "990100001001002"],
    ...                    "households": [10, 10], "households_source": ["registry"] * 2})
    >>> v = pd.DataFrame({"id": [1, 2, 3], "household_id": [1, 2, 3],
    ...                   "grid_code": ["990100001001001"] * 2 + ["990100001001002"],
    ...                   "status": ["visited"] * 3})
    >>> rows = progress_records(progress_table(hh, v), Principal("v", "viewer"))
    >>> [(r["grid"], r["visited"], r["progress"]) for r in rows]
    [('990100001001001', '<3', None), ('990100001001002', '<3', None)]
    """
    by = str(table.index.name or "grid")
    if not needs_hiding(principal):
        out = table.reset_index()
        recs: list[dict[str, Any]] = []
        for rec in out.to_dict("records"):
            recs.append({str(key): _json_value(val) for key, val in rec.items()})
        return recs
    groups = pd.Series([str(i)[: _PARENT.get(by, 0)] for i in table.index], index=table.index)
    safe = protect_table(
        table.drop(columns="visit_ids"),
        counts=_COUNTS,
        pairs=_PAIRS,
        rates=_RATES,
        groups=groups,
        k=k,
    )
    return [
        {str(key): _json_value(val) for key, val in rec.items()}
        for rec in safe.reset_index().to_dict("records")
    ]


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    return v


_CAMPAIGN_FIELDS = ("name", "area_code", "starts_at", "ends_at")
_VISIT_FIELDS = (
    "household_id",
    "status",
    "at",
    "location",
    "crs",
    "data_correct",
    "satisfied",
    "note",
)


def _object(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object", field="body")
    unknown = [k for k in body if k not in allowed]
    if unknown:
        raise BadInput(
            f"unknown field {str(unknown[0])[:60]!r}; fields: {', '.join(allowed)}",
            field=str(unknown[0])[:60],
        )
    return body


def _text_field(body: dict[str, Any], name: str, *, max_len: int = 200) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise BadInput(f"{name} must be a non-empty string (at most {max_len})", field=name)
    return value


def parse_campaign(body: Any) -> dict[str, Any]:
    """Validate a ``POST /doorknock/campaigns`` body into :func:`create_campaign` arguments.

    Examples
    --------
    >>> parse_campaign({"name": "敲门", "area_code": "990100001",
    ...                 "starts_at": "2026-11-01", "ends_at": "2026-12-01"})["area_code"]
    '990100001'
    >>> parse_campaign({"name": "敲门", "area_code": 990100001, "starts_at": "2026-11-01",
    ...                 "ends_at": "2026-12-01"})
    Traceback (most recent call last):
    gridmap.common.errors.BadInput: area_code must be a non-empty string (at most 15)
    """
    obj = _object(body, _CAMPAIGN_FIELDS)
    return {
        "name": _text_field(obj, "name"),
        "area_code": _text_field(obj, "area_code", max_len=15),
        "starts_at": _text_field(obj, "starts_at", max_len=40),
        "ends_at": _text_field(obj, "ends_at", max_len=40),
    }


def _point(value: Any, *, wgs84: bool = True) -> tuple[float, float]:
    if not isinstance(value, dict):
        raise BadInput('location must be a GeoJSON Point {"type": "Point", ...}', field="location")
    extra = [k for k in value if k not in ("type", "coordinates", "bbox")]
    if extra:
        raise BadInput(
            f"location.{str(extra[0])[:40]} is not allowed: GeoJSON positions are WGS84 "
            "[lon, lat] (RFC 7946)",
            field=f"location.{str(extra[0])[:40]}",
        )
    if value.get("type") != "Point":
        raise BadInput("location.type must be 'Point'", field="location.type")
    xy = value.get("coordinates")
    if not isinstance(xy, list) or len(xy) != 2:
        raise BadInput(
            "location.coordinates must be [lon, lat] (two numbers)", field="location.coordinates"
        )
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in xy):
        raise BadInput("location.coordinates must be numbers", field="location.coordinates")
    lon, lat = float(xy[0]), float(xy[1])
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise BadInput("location.coordinates must be finite", field="location.coordinates")
    if wgs84 and not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadInput(
            "location.coordinates out of range: WGS84 [lon, lat], ...",
            field="location.coordinates",
        )
    return lon, lat


def _flag(obj: dict[str, Any], name: str) -> bool | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, bool):
        raise BadInput(f"{name} must be true, false or null", field=name)
    return value


def parse_visit(body: Any) -> Visit:
    """Validate a visit body into the :class:`Visit` :func:`record_visit` records.

    ``{"household_id": 12, "status": "verified", "at": "2026-11-05T10:00+08:00",
    "location": {"type": "Point", "coordinates": [lon, lat]}, "crs": "gcj02",
    "data_correct": true, "satisfied": null, "note": "…"}`` — the place is a GeoJSON
    Point, in WGS84 unless ``crs`` names its system (``wgs84``, ``gcj02``, ``bd09``,
    ``cgcs2000`` or ``EPSG:n``; converted to WGS84 here).

    Examples
    --------
    >>> v = parse_visit({"household_id": 3, "status": "visited", "at": "2026-11-05",
    ...                  "location": {"type": "Point", "coordinates": [24.9, 60.2]}})
    >>> v.lon, v.lat
    (24.9, 60.2)
    >>> parse_visit({"household_id": 3, "status": "visited", "at": "2026-11-05",
    ...              "location": {"type": "Point", "coordinates": [24.9, 91]}})
    Traceback (most recent call last):
    gridmap.common.errors.BadInput: location.coordinates out of range: WGS84 [lon, lat], ...
    """
    obj = _object(body, _VISIT_FIELDS)
    hid = obj.get("household_id")
    if not isinstance(hid, int) or isinstance(hid, bool) or not 0 < hid < 2**63:
        raise BadInput("household_id must be a positive integer", field="household_id")
    status = obj.get("status")
    if not isinstance(status, str) or status not in VISIT_STATUSES:
        raise BadInput(f"status must be one of {', '.join(VISIT_STATUSES)}", field="status")
    at = _text_field(obj, "at", max_len=40)
    if "location" not in obj:
        raise BadInput("location (a GeoJSON Point) is required", field="location")
    crs = obj.get("crs")
    lon, lat = _point(obj["location"], wgs84=crs is None)
    if crs is not None:
        # The phone's map SDK may give GCJ-02/BD-09 (or any EPSG system): the
        # same conversion as every other coordinate input (events, /locate).
        from gridmap.events.intake import parse_location

        loc = parse_location({"lon": lon, "lat": lat, "crs": crs})
        lon, lat = loc.lon, loc.lat
    note = obj.get("note")
    if note is not None and not isinstance(note, str):
        raise BadInput("note must be a string", field="note")
    return Visit(
        household_id=hid,
        status=status,
        at=at,
        lon=lon,
        lat=lat,
        data_correct=_flag(obj, "data_correct"),
        satisfied=_flag(obj, "satisfied"),
        note=note,
    )


def progress_grids(
    store: Store,
    principal: Principal,
    *,
    campaign_id: int,
    k: int = DEFAULT_MIN_COUNT,
) -> gpd.GeoDataFrame:
    """Grids of a campaign with their progress (for the map): aggregates only.

    One row per current grid of the campaign's area the principal may see:
    ``code``, ``name``, geometry and the :func:`progress_records` columns
    (small counts hidden for roles without detail rights; no visit ids).

    Examples
    --------
    >>> from gridmap.security.access import SYSTEM
    >>> s, c = example_campaign()
    >>> len(progress_grids(s, SYSTEM, campaign_id=c["id"]))
    0
    """
    camp = get_campaign(store, principal, campaign_id)
    table = campaign_progress(store, principal, campaign_id=int(camp["id"]), by="grid")
    records = {str(r["grid"]): r for r in progress_records(table, principal, k=k)}
    area = str(camp["area_code"])
    prefixes = (
        (area,)
        if principal.covers(area)
        else tuple(a for a in principal.areas if a.startswith(area))
    )
    with store.scoped(principal.areas):
        grids = store.read("grids", where={"code": Prefix(prefixes)})
    if not isinstance(grids, gpd.GeoDataFrame) or grids.empty:
        return gpd.GeoDataFrame(
            {"code": pd.Series(dtype=object)}, geometry=gpd.GeoSeries([], crs=4326), crs=4326
        )
    if "valid_to" in grids:
        grids = grids[grids["valid_to"].isna()]
    grids = grids.sort_values("id").drop_duplicates("code", keep="last")
    cols = [c for c in PROGRESS_COLUMNS if c != "visit_ids"]
    data: dict[str, list[Any]] = {c: [] for c in cols}
    for code in grids["code"].astype(str):
        rec = records.get(code, {})
        for c in cols:
            data[c].append(rec.get(c))
    out = gpd.GeoDataFrame(
        {"code": grids["code"].astype(str).to_numpy(), "name": grids["name"].to_numpy(), **data},
        geometry=grids.geometry.to_numpy(),
        crs=4326,
    )
    return out
