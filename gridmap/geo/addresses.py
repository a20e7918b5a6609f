"""Find a place from an address: the store's buildings (names, addresses) and roads (names).

Open311 clients may send only an ``address_string`` ("Kaivokatu 2",
"Ateneum", "演示路 8号"). :func:`lookup_address` answers one WGS84 point for
it, or a :class:`~gridmap.common.errors.BadInput` naming the problem:

1. **Exact**: the text, normalized (Unicode NFKC, case-folded, punctuation
   and repeated spaces removed), equals a building's ``address`` or
   ``name`` or a road's ``name``. Buildings come before roads.
2. **Fuzzy**: otherwise the closest texts by :class:`difflib.SequenceMatcher`
   ratio (at least :data:`MIN_RATIO`), keeping only those whose house numbers
   begin with the numbers of the query ("Snellmaninkatu 14" finds
   "Snellmaninkatu 14A", never "Snellmaninkatu 12"), or texts the query
   contains whole ("Kaivokatu 2, Helsinki"); each comma-separated part of
   the query is tried as well. The best must lead the next
   distinct text by :data:`MIN_LEAD`, else the answer is ambiguous.

All features matching the chosen text must lie within :data:`SPREAD_M` metres
of one another (buildings by their surface points, roads by their whole
extent, measured in the local UTM zone): several buildings sharing an
address side by side are one place; a street name alone, whose segments run
for a kilometre, is not, and is refused with its length. The point is on the
surface of the largest building, or at the middle of the road.

The texts are read once per store into an :class:`AddressIndex` and reused:
:class:`AddressCache` rebuilds it only when the store's ``buildings`` or
``roads`` changed, by the rule of :class:`gridmap.geo.locate.LocatorCache` (the
:func:`~gridmap.storage.changes.data_version` of those layers, asked at most
every ``check_seconds``; while one request checks or rebuilds, the others
answer from the index they have). :func:`lookup_address` uses one shared
cache unless it is handed another.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import shapely

from gridmap.common.errors import BadInput
from gridmap.geo.locate import StoreCache
from gridmap.geo.projection import to_metric
from gridmap.security.access import ALL_AREAS
from gridmap.storage import Store

__all__ = [
    "ADDRESS_LAYERS",
    "MIN_LEAD",
    "MIN_RATIO",
    "SHARED_CACHE",
    "SPREAD_M",
    "AddressCache",
    "AddressIndex",
    "AddressMatch",
    "address_candidates",
    "lookup_address",
    "normalize_address",
]

#: Least similarity of a fuzzy match.
MIN_RATIO = 0.82
#: How far the best fuzzy match must lead the next distinct text.
MIN_LEAD = 0.04
#: Features matching one text farther apart than this (metres) are not one place.
SPREAD_M = 150.0
_PUNCT = re.compile(r"[\W_]+", re.UNICODE)
_NUMBER = re.compile(r"\d+")
#: The layers whose texts an address may match (the index is rebuilt when they change).
ADDRESS_LAYERS = ("buildings", "roads")
#: What separates the parts of an address ("Kaivokatu 2, Helsinki"; "莱西市，水集街道").
_PARTS = re.compile(r"[,;，；、]")


@dataclass(frozen=True)
class AddressMatch:
    """Where an address string was found.

    Attributes
    ----------
    lon, lat : float
        The WGS84 point (on the building, or the middle of the road).
    matched : str
        The stored text that matched (as stored).
    source : {"building", "road"}
        What it was found on.
    exact : bool
        ``False`` for a fuzzy match.
    """

    lon: float
    lat: float
    matched: str
    source: str
    exact: bool


def normalize_address(text: str) -> str:
    """Compare-ready form of an address: NFKC, case-folded, punctuation to single spaces.

    Examples
    --------
    >>> normalize_address("  KAIVOKATU  2, ")
    'kaivokatu 2'
    >>> normalize_address("演示路８号")
    '演示路8号'
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCT.sub(" ", folded).split())


def address_candidates(store: Store) -> gpd.GeoDataFrame:
    """Texts an address may match: one row per building address/name and road name.

    Columns ``text`` (as stored), ``key`` (:func:`normalize_address`),
    ``source`` (``building`` | ``road``), ``area`` (building footprint area in
    square degrees, for choosing the largest) and ``geometry`` (WGS84).
    """
    parts: list[gpd.GeoDataFrame] = []
    for layer, columns in (("buildings", ("address", "name")), ("roads", ("name",))):
        frame = store.read(layer)
        if frame.empty or not isinstance(frame, gpd.GeoDataFrame):
            continue
        for col in columns:
            if col not in frame.columns:
                continue
            rows = frame[frame[col].notna() & frame.geometry.notna()]
            if rows.empty:
                continue
            part = gpd.GeoDataFrame(
                {
                    "text": rows[col].astype(str).to_numpy(),
                    "source": "building" if layer == "buildings" else "road",
                },
                geometry=rows.geometry.to_numpy(),
                crs=4326,
            )
            parts.append(part)
    if not parts:
        return gpd.GeoDataFrame({"text": [], "key": [], "source": []}, geometry=[], crs=4326)
    out = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)
    out["key"] = [normalize_address(t) for t in out["text"]]
    return out[out["key"] != ""]


@dataclass(frozen=True)
class AddressIndex:
    """The texts of one store that addresses are matched against, read once.

    Attributes
    ----------
    candidates : GeoDataFrame
        :func:`address_candidates` of the store (every area).
    keys : list of str
        The distinct normalized texts, sorted (what fuzzy matching scans).
    """

    candidates: gpd.GeoDataFrame
    keys: list[str]

    @classmethod
    def from_store(cls, store: Store) -> AddressIndex:
        """Read the buildings and roads of *store*, every area (they are public texts)."""
        with store.scoped(ALL_AREAS):
            cands = address_candidates(store)
        return cls(cands, sorted(set(cands["key"])))


class AddressCache(StoreCache[AddressIndex]):
    """One :class:`AddressIndex` per store, rebuilt when its buildings or roads change.

    The freshness rule of :class:`gridmap.geo.locate.LocatorCache`: the change
    check (:func:`~gridmap.storage.changes.data_version` of
    :data:`ADDRESS_LAYERS`, one cheap query) runs at most every
    *check_seconds*; a request that finds another one checking or rebuilding
    answers from the index it has instead of waiting.

    Parameters
    ----------
    check_seconds : float, default 1.0
        Least time between two change checks of one store.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> cache = AddressCache(check_seconds=0)
    >>> store = open_store(":memory:", migrate=True)
    >>> cache.get(store) is cache.get(store)
    True
    """

    layers = ADDRESS_LAYERS

    def build(self, store: Store) -> AddressIndex:
        """The address index of *store*'s buildings and roads."""
        return AddressIndex.from_store(store)


#: The cache :func:`lookup_address` uses when it is handed none.
SHARED_CACHE = AddressCache()


def _numbers_fit(query: str, key: str) -> bool:
    """The house numbers of *key* begin with those of *query* (none in the query: any)."""
    want = _NUMBER.findall(query)
    have = _NUMBER.findall(key)
    return have[: len(want)] == want


def _score(query: str, key: str) -> float | None:
    """How well *key* matches *query* (``None``: not at all)."""
    if not _numbers_fit(query, key):
        return None
    if len(key) >= 4 and re.search(rf"(^| ){re.escape(key)}( |$)", query):
        # The query holds the whole stored text ("kaivokatu 2 helsinki"):
        # the longer the stored text, the better.
        return 1.0 + len(key) / 1000.0
    ratio = difflib.SequenceMatcher(None, query, key, autojunk=False).ratio()
    return ratio if ratio >= MIN_RATIO else None


def _fuzzy(queries: list[str], keys: list[str]) -> list[tuple[float, str]]:
    """Fuzzy candidates ``(score, key)``, best first, over the query and its parts."""
    scored: list[tuple[float, str]] = []
    for key in keys:
        scores = [s for q in queries if (s := _score(q, key)) is not None]
        if scores:
            scored.append((max(scores), key))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return scored


def _place(rows: gpd.GeoDataFrame, shown: str) -> tuple[float, float]:
    """One point for the features of one text, or ``BadInput`` when they are not one place."""
    local, _ = to_metric(rows)
    building = rows["source"].iloc[0] == "building"
    # Buildings: how far apart they stand (one large building is one place);
    # roads: how far the named street runs.
    geoms = local.geometry.to_numpy()
    spots = shapely.point_on_surface(geoms) if building else geoms
    minx, miny, maxx, maxy = shapely.total_bounds(spots)
    spread = float(((maxx - minx) ** 2 + (maxy - miny) ** 2) ** 0.5)
    if spread > SPREAD_M:
        what = f"{len(rows)} buildings" if building else "road"
        raise BadInput(
            f"address_string {shown!r} is ambiguous: it names a {what} spread over "
            f"{spread:,.0f} m (地址不明确: 范围约{spread:,.0f}米); give a house number, "
            "a building name or lat/long",
            field="address_string",
        )
    if building:
        areas = local.geometry.area.to_numpy()
        geom = rows.geometry.iloc[int(areas.argmax())]
        point = shapely.point_on_surface(geom)
    else:
        merged = shapely.line_merge(shapely.union_all(rows.geometry.to_numpy()))
        point = shapely.line_interpolate_point(merged, 0.5, normalized=True)
        if point.is_empty:
            point = shapely.point_on_surface(merged)
    return float(point.x), float(point.y)


def lookup_address(store: Store, text: str, *, cache: AddressCache | None = None) -> AddressMatch:
    """Place an address string on the store's buildings and roads.

    Parameters
    ----------
    store : Store
        Holds ``buildings`` (``address``, ``name``) and ``roads`` (``name``).
    text : str
        The address as a person wrote it.
    cache : AddressCache, optional
        Where the store's texts are kept between calls (default:
        :data:`SHARED_CACHE`); they are read again only after the store's
        buildings or roads changed.

    Raises
    ------
    BadInput
        Empty, unknown (no building or road close to it: the nearest texts are
        suggested), or ambiguous (two texts equally close, or one text naming
        features far apart).

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> lookup_address(open_store(":memory:", migrate=True), "Kaivokatu 2")
    Traceback (most recent call last):
    gridmap.common.errors.BadInput: address_string 'Kaivokatu 2' matches no building or road ...
    """
    shown = text.strip()[:100]
    query = normalize_address(text)
    if not query:
        raise BadInput("address_string is empty", field="address_string")
    index = (cache if cache is not None else SHARED_CACHE).get(store)
    cands = index.candidates
    exact = cands[cands["key"] == query]
    if not exact.empty:
        buildings = exact[exact["source"] == "building"]
        rows = buildings if not buildings.empty else exact
        lon, lat = _place(gpd.GeoDataFrame(rows, crs=4326), shown)
        return AddressMatch(lon, lat, str(rows["text"].iloc[0]), str(rows["source"].iloc[0]), True)
    keys = index.keys
    parts = [normalize_address(p) for p in _PARTS.split(text)]
    scored = _fuzzy([query, *(p for p in parts if p and p != query)], keys)
    if not scored:
        near = difflib.get_close_matches(query, keys, n=3, cutoff=0.5)
        hint = "; closest: " + ", ".join(repr(_stored(cands, k)) for k in near) if near else ""
        raise BadInput(
            f"address_string {shown!r} matches no building or road (未找到该地址){hint}",
            field="address_string",
        )
    best_score, best = scored[0]
    if len(scored) > 1 and best_score - scored[1][0] < MIN_LEAD:
        options = ", ".join(repr(_stored(cands, k)) for _, k in scored[:3])
        raise BadInput(
            f"address_string {shown!r} is ambiguous (地址不明确): it could be {options}",
            field="address_string",
        )
    rows = cands[cands["key"] == best]
    buildings = rows[rows["source"] == "building"]
    rows = buildings if not buildings.empty else rows
    lon, lat = _place(gpd.GeoDataFrame(rows, crs=4326), shown)
    return AddressMatch(lon, lat, str(rows["text"].iloc[0]), str(rows["source"].iloc[0]), False)


def _stored(cands: pd.DataFrame, key: str) -> str:
    return str(cands.loc[cands["key"] == key, "text"].iloc[0])
