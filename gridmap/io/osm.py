"""Read an OpenStreetMap extract (``.osm.pbf``) into gridmap's layers with pyrosm.

:func:`read_osm` returns one GeoDataFrame per layer, with exactly the columns
of :data:`gridmap.common.model.LAYERS` (WGS84, ``source="osm"``, ``source_id`` such
as ``"way/123"``):

``buildings``
    name, address (``addr:street`` + ``addr:housenumber``), use (the
    ``building`` tag, or ``amenity``/``shop``/``office`` when it only says
    ``yes``), floors (``building:levels``, else ``height`` / 3 m, else a default
    by use), footprint ``area_m2`` (in the local UTM zone, see
    :mod:`gridmap.geo.projection`) and **estimated** households and residents.
``roads``
    every ``highway`` way (pyrosm's ``"all"`` network); ``class`` is the
    highway tag, ``walkable``/``drivable`` follow from it (and from
    ``access``/``foot``/``motor_vehicle``), ``length_m`` is measured in metres.
``key_areas``
    key places (重点场所) only: schools, kindergartens, hospitals, markets,
    stations, places of worship and universities, with a priority (1 = highest)
    and a required number of patrol visits per day.
``admin_units``
    administrative boundaries mapped by ``admin_level`` to city / town /
    community; empty when the extract has none (the bundled ones have none).

How households are estimated
----------------------------
OpenStreetMap knows footprints and sometimes floors, never households, so
gridmap estimates them, openly and with parameters in :class:`OsmConfig`::

    gross floor area = footprint area_m2 × floors
    households       = round(gross floor area × net_to_gross / m2_per_household × share)
    residents        = round(households × persons_per_household)

``share`` is 1 for residential uses (apartments, residential, house,
detached, semidetached_house, terrace, dormitory), ``yes_residential_share``
for buildings tagged only ``building=yes`` (their use is unknown) and 0 for
everything else. The defaults come from China's 2020 census: 2.62 persons
per family household and 36.5 m² of building floor area per urban resident,
i.e. about 95 m² per household; ``net_to_gross`` (0.85) removes the floor
area that belongs to no dwelling (stairs, lobbies, plant rooms, shops on the
ground floor). Estimates are marked as such in the layer titles and are
replaced by door-knocking data (敲门行动) as it is collected.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pydantic import BaseModel, ConfigDict, Field

from gridmap.common.errors import BadInput, UnsupportedFormat
from gridmap.common.extras import LazyModule
from gridmap.common.model import LAYERS
from gridmap.geo.projection import area_m2, length_m
from gridmap.io._progress import Progress, notify

if TYPE_CHECKING:
    import pyrosm
else:  # the [osm] extra, imported on first use
    pyrosm = LazyModule("pyrosm", extra="osm")

__all__ = [
    "MAJOR_ROAD_CLASSES",
    "MOTORWAY_CLASSES",
    "OSM_LAYERS",
    "DemoHierarchy",
    "OsmConfig",
    "PoiCategory",
    "admin_units_from_boundaries",
    "parse_levels",
    "read_osm",
]

#: The layers :func:`read_osm` returns, in this order.
OSM_LAYERS: tuple[str, ...] = ("buildings", "roads", "key_areas", "admin_units")

#: Motorways and their ramps (OSM ``highway`` values): for cars only.
MOTORWAY_CLASSES: tuple[str, ...] = ("motorway", "motorway_link")
#: The major roads (OSM ``highway`` values), from motorways down to tertiary
#: roads, each followed by its ``_link`` ramps.
MAJOR_ROAD_CLASSES: tuple[str, ...] = (
    *MOTORWAY_CLASSES,
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
)


class PoiCategory(BaseModel):
    """A category of key place (重点场所) and the OSM tags that make one."""

    model_config = ConfigDict(frozen=True)

    tags: dict[str, list[str]] = Field(description="OSM key → values; any match qualifies.")
    priority: int = Field(ge=1, le=9, description="1 is the highest priority.")
    visits_per_day: float = Field(ge=0, description="Required patrol visits per day.")
    name_zh: str = ""


def _default_categories() -> dict[str, PoiCategory]:
    return {
        "school": PoiCategory(
            tags={"amenity": ["school"]}, priority=1, visits_per_day=3, name_zh="学校"
        ),
        "kindergarten": PoiCategory(
            tags={"amenity": ["kindergarten", "childcare"]},
            priority=1,
            visits_per_day=3,
            name_zh="幼儿园",
        ),
        "hospital": PoiCategory(
            tags={"amenity": ["hospital", "clinic"], "healthcare": ["hospital"]},
            priority=1,
            visits_per_day=3,
            name_zh="医院",
        ),
        "station": PoiCategory(
            tags={
                "railway": ["station", "halt"],
                "public_transport": ["station"],
                "amenity": ["bus_station"],
            },
            priority=2,
            visits_per_day=3,
            name_zh="车站",
        ),
        "market": PoiCategory(
            tags={"amenity": ["marketplace"], "shop": ["supermarket", "mall"]},
            priority=2,
            visits_per_day=2,
            name_zh="市场/商场",
        ),
        "place_of_worship": PoiCategory(
            tags={"amenity": ["place_of_worship"]}, priority=3, visits_per_day=1, name_zh="宗教场所"
        ),
        "university": PoiCategory(
            tags={"amenity": ["university", "college"]},
            priority=3,
            visits_per_day=1,
            name_zh="高校",
        ),
    }


class DemoHierarchy(BaseModel):
    """The city → town → community created when an extract has no community boundary.

    Codes follow the national pattern: a 6-digit county code, then 3 digits
    for the town and 3 for the community (12 digits in all).
    """

    model_config = ConfigDict(frozen=True)

    city_code: str = Field(default="990100", pattern=r"^\d{6}$")
    city_name: str = "演示市"
    city_name_en: str = "Demo City"
    town_code: str = Field(default="001", pattern=r"^\d{3}$")
    town_name: str = "演示街道"
    town_name_en: str = "Demo Street"
    community_code: str = Field(default="001", pattern=r"^\d{3}$")
    community_name: str = "演示社区"
    community_name_en: str = "Demo Community"
    buffer_m: float = Field(default=50.0, ge=0, description="Buffer around the data, metres.")
    hull_ratio: float = Field(
        default=0.3, gt=0, le=1, description="shapely.concave_hull ratio; 1 gives the convex hull."
    )


class OsmConfig(BaseModel):
    """Parameters of the OSM import; every default is documented here.

    Examples
    --------
    >>> OsmConfig().persons_per_household
    2.62
    >>> OsmConfig(yes_residential_share=1.0).yes_residential_share
    1.0
    """

    model_config = ConfigDict(frozen=True)

    m2_per_household: float = Field(
        default=95.0,
        gt=0,
        description="Gross floor area per household (2020 census: 36.5 m² per urban "
        "resident × 2.62 persons).",
    )
    net_to_gross: float = Field(
        default=0.85, gt=0, le=1, description="Share of a building's floor area that is dwellings."
    )
    persons_per_household: float = Field(
        default=2.62, gt=0, description="Persons per household (China 2020 census average)."
    )
    residential_uses: tuple[str, ...] = (
        "apartments",
        "residential",
        "house",
        "detached",
        "semidetached_house",
        "terrace",
        "dormitory",
    )
    yes_residential_share: float = Field(
        default=0.5, ge=0, le=1, description="Share of a `building=yes` estimate counted as homes."
    )
    default_floors: dict[str, int] = Field(
        default_factory=lambda: {
            "apartments": 6,
            "residential": 5,
            "dormitory": 5,
            "house": 2,
            "detached": 2,
            "semidetached_house": 2,
            "terrace": 2,
            "yes": 3,
            "commercial": 3,
            "office": 5,
            "retail": 2,
            "school": 3,
            "hospital": 5,
        },
        description="Floors assumed by use when a building has no levels or height.",
    )
    fallback_floors: int = Field(default=1, ge=1, description="Floors for any other use.")
    floor_height_m: float = Field(default=3.0, gt=0, description="Storey height to read `height`.")
    max_floors: int = Field(default=200, ge=1, description="Level values above this are ignored.")
    drivable_classes: tuple[str, ...] = (
        *MAJOR_ROAD_CLASSES,
        "unclassified",
        "residential",
        "living_street",
        "service",
        "road",
        "track",
    )
    non_walkable_classes: tuple[str, ...] = (
        *MOTORWAY_CLASSES,
        "trunk",
        "trunk_link",
        "bus_guideway",
        "raceway",
        "construction",
        "proposed",
        "abandoned",
    )
    poi_categories: dict[str, PoiCategory] = Field(default_factory=_default_categories)
    admin_levels: dict[int, str] = Field(
        default_factory=lambda: {6: "city", 8: "town", 9: "community", 10: "community"},
        description="OSM admin_level → city / town / community.",
    )
    admin_code_tags: tuple[str, ...] = ("china_admin_code", "ref:admin", "ref")
    hierarchy: DemoHierarchy = Field(default_factory=DemoHierarchy)


# ----------------------------------------------------------------------------- helpers


def _blank_to_na(s: pd.Series) -> pd.Series:
    return s.mask((s == "").fillna(False).astype(bool))


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    """Column *name* as nullable text (all null when absent)."""
    if name in frame.columns:
        return _blank_to_na(frame[name].astype("string").str.strip())
    return pd.Series(pd.NA, index=frame.index, dtype="string")


def _text(s: pd.Series) -> pd.Series:
    """Nullable text → object Series with ``None`` for missing values."""
    out = s.astype(object)
    return out.where(s.notna(), None)


def _source_ids(frame: pd.DataFrame) -> pd.Series:
    kind = _col(frame, "osm_type").fillna("way")
    ids = pd.to_numeric(frame["id"], errors="coerce").astype("Int64").astype("string")
    return (kind + "/" + ids).astype(object)


def _empty(layer: str) -> gpd.GeoDataFrame:
    cols = {c: pd.Series(dtype=object) for c in LAYERS[layer].column_names}
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=4326), crs=4326)


def _finish(layer: str, frame: pd.DataFrame, geometry: gpd.GeoSeries) -> gpd.GeoDataFrame:
    out = gpd.GeoDataFrame(
        # Columns the extract cannot fill (admin_units' validity) are left null.
        frame.reindex(columns=LAYERS[layer].column_names).reset_index(drop=True),
        geometry=gpd.GeoSeries(geometry.to_numpy(), crs=4326),
        crs=4326,
    )
    return out


def parse_levels(values: pd.Series, *, max_floors: int = 200) -> pd.Series:
    """Parse ``building:levels`` text into whole floors.

    The largest number in the text counts (``"3;4"`` → 4, ``"5-7"`` → 7),
    fractions round up (``"4.5"`` → 5: an attic is a storey), values of 0 or
    above *max_floors* and text without numbers give ``<NA>``.

    Parameters
    ----------
    values : pandas.Series
        Tag values (text, numbers or nulls).
    max_floors : int, default 200
        Larger values are taken as mistakes.

    Returns
    -------
    pandas.Series
        ``Int64`` floors aligned to *values*.

    Examples
    --------
    >>> import pandas as pd
    >>> parse_levels(pd.Series(["4", "3;4", "4.5", "4,5", "many", None, "0"])).tolist()
    [4, 4, 5, 5, <NA>, <NA>, <NA>]
    """
    text = values.astype("string").str.replace(",", ".", regex=False)
    found = text.str.findall(r"\d+(?:\.\d+)?")
    top = found.map(
        lambda xs: max(float(x) for x in xs) if isinstance(xs, list) and xs else np.nan
    ).astype("float64")
    floors = np.ceil(top.to_numpy() - 1e-9)
    ok = np.isfinite(floors) & (floors >= 1) & (floors <= max_floors)
    return pd.Series(
        pd.array(np.where(ok, floors, 0).astype("int64"), dtype="Int64"), index=values.index
    ).where(ok, pd.NA)


def _quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# ----------------------------------------------------------------------------- layers


def _buildings(osm: pyrosm.OSM, config: OsmConfig) -> gpd.GeoDataFrame:
    raw = _quiet(osm.get_buildings)
    if raw is None or len(raw) == 0:
        return _empty("buildings")
    raw = raw.reset_index(drop=True)
    frame = pd.DataFrame(index=raw.index)
    frame["name"] = _text(_col(raw, "name"))
    street, number = _col(raw, "addr:street"), _col(raw, "addr:housenumber")
    frame["address"] = _text(
        _blank_to_na((street.fillna("") + " " + number.fillna("")).str.strip())
    )
    use = _col(raw, "building").str.lower()
    unspecific = use.isna() | (use == "yes")
    for tag, value in (("amenity", None), ("shop", "retail"), ("office", "office")):
        other = _col(raw, tag)
        take = unspecific & other.notna()
        use = use.mask(take, other if value is None else value)
        unspecific &= ~take
    use = use.fillna("yes")
    frame["use"] = _text(use)

    floors = parse_levels(_col(raw, "building:levels"), max_floors=config.max_floors)
    height = pd.to_numeric(
        _col(raw, "height").str.extract(r"(\d+(?:\.\d+)?)", expand=False), errors="coerce"
    )
    by_height = (height / config.floor_height_m).round()
    by_height = by_height.where((by_height >= 1) & (by_height <= config.max_floors))
    floors = floors.fillna(by_height.astype("Int64"))
    default = use.map(config.default_floors).fillna(config.fallback_floors).astype("Int64")
    floors = floors.fillna(default).astype("Int64")
    frame["floors"] = floors

    geometry = gpd.GeoSeries(raw.geometry.to_numpy(), index=raw.index, crs=4326)
    frame["area_m2"] = area_m2(geometry)
    share = np.where(
        use.isin(config.residential_uses).to_numpy(),
        1.0,
        np.where((use == "yes").to_numpy(), config.yes_residential_share, 0.0),
    )
    gross = frame["area_m2"].fillna(0.0).to_numpy() * floors.to_numpy(dtype="float64")
    households = np.round(gross * config.net_to_gross / config.m2_per_household * share)
    residents = np.round(households * config.persons_per_household)
    frame["households"] = pd.array(households.astype("int64"), dtype="Int64")
    frame["residents"] = pd.array(residents.astype("int64"), dtype="Int64")
    frame["grid_code"] = None
    frame["source"] = "osm"
    frame["source_id"] = _source_ids(raw)
    return _finish("buildings", frame, geometry)


def _flag(values: pd.Series, yes: tuple[str, ...]) -> np.ndarray:
    return np.asarray(values.str.lower().isin(yes).fillna(False), dtype=bool)


def _roads(osm: pyrosm.OSM, config: OsmConfig) -> gpd.GeoDataFrame:
    raw = _quiet(osm.get_network, network_type="all")
    if raw is None or len(raw) == 0:
        return _empty("roads")
    raw = raw.reset_index(drop=True)
    frame = pd.DataFrame(index=raw.index)
    highway = _col(raw, "highway").str.lower()
    frame["name"] = _text(_col(raw, "name"))
    frame["class"] = _text(highway)
    no = ("no", "private")
    yes = ("yes", "designated", "permissive")
    closed = _flag(_col(raw, "access"), no)
    foot_no, foot_yes = _flag(_col(raw, "foot"), no), _flag(_col(raw, "foot"), yes)
    motor_no = _flag(_col(raw, "motor_vehicle"), no) | _flag(_col(raw, "motorcar"), no)
    walkable = ~highway.isin(config.non_walkable_classes).fillna(False).to_numpy(dtype=bool)
    walkable = (walkable & ~closed & ~foot_no) | foot_yes
    drivable = highway.isin(config.drivable_classes).fillna(False).to_numpy(dtype=bool)
    drivable = drivable & ~closed & ~motor_no
    frame["walkable"] = pd.array(walkable, dtype="boolean")
    frame["drivable"] = pd.array(drivable, dtype="boolean")
    geometry = gpd.GeoSeries(raw.geometry.to_numpy(), index=raw.index, crs=4326)
    frame["length_m"] = length_m(geometry)
    frame["source"] = "osm"
    frame["source_id"] = _source_ids(raw)
    return _finish("roads", frame, geometry)


def _key_areas(osm: pyrosm.OSM, config: OsmConfig) -> gpd.GeoDataFrame:
    wanted: dict[str, set[str]] = {}
    for cat in config.poi_categories.values():
        for key, values in cat.tags.items():
            wanted.setdefault(key, set()).update(values)
    if not wanted:
        return _empty("key_areas")
    raw = _quiet(osm.get_pois, custom_filter={k: sorted(v) for k, v in wanted.items()})
    if raw is None or len(raw) == 0:
        return _empty("key_areas")
    raw = raw.reset_index(drop=True)
    category = pd.Series(pd.NA, index=raw.index, dtype="string")
    priority = pd.Series(pd.NA, index=raw.index, dtype="Int64")
    visits = pd.Series(np.nan, index=raw.index, dtype="float64")
    for name, cat in config.poi_categories.items():
        hit = np.zeros(len(raw), dtype=bool)
        for key, values in cat.tags.items():
            hit |= _col(raw, key).str.lower().isin(values).fillna(False).to_numpy(dtype=bool)
        take = hit & category.isna().to_numpy()
        category[take] = name
        priority[take] = cat.priority
        visits[take] = cat.visits_per_day
    keep = category.notna().to_numpy()
    raw = raw.loc[keep].reset_index(drop=True)
    frame = pd.DataFrame(index=raw.index)
    frame["name"] = _text(_col(raw, "name"))
    frame["kind"] = "key_place"
    frame["category"] = _text(category[keep].reset_index(drop=True))
    frame["priority"] = priority[keep].reset_index(drop=True)
    frame["visits_per_day"] = visits[keep].reset_index(drop=True)
    frame["community_code"] = None
    frame["source"] = "osm"
    frame["source_id"] = _source_ids(raw)
    geometry = gpd.GeoSeries(raw.geometry.to_numpy(), index=raw.index, crs=4326)
    return _finish("key_areas", frame, geometry)


def _tag(frame: pd.DataFrame, key: str) -> pd.Series:
    """A tag from its column, else from the JSON ``tags`` column pyrosm leaves."""
    direct = _col(frame, key)
    if "tags" not in frame.columns or not direct.isna().any():
        return direct

    def lookup(text: Any) -> Any:
        if not isinstance(text, str):
            return pd.NA
        try:
            value = json.loads(text).get(key)
        except (ValueError, AttributeError):
            return pd.NA
        return pd.NA if value is None else str(value)

    from_json = frame["tags"].map(lookup).astype("string")
    return direct.fillna(from_json)


def admin_units_from_boundaries(
    boundaries: gpd.GeoDataFrame | None, config: OsmConfig | None = None
) -> gpd.GeoDataFrame:
    """Map OSM administrative boundaries to ``admin_units`` rows.

    ``admin_level`` picks the level through ``config.admin_levels``
    (default 6 → city, 8 → town, 9 and 10 → community); other levels are
    dropped. The code is the first of ``config.admin_code_tags`` present, else
    ``osm-<type>-<id>``; ``parent_code`` is the code of the smallest unit of a
    higher level containing the unit's representative point. Communities whose
    name ends in 村 or that are tagged ``place=village/hamlet`` get
    ``kind="village"``; towns named …街道 get ``kind="street"``.

    Parameters
    ----------
    boundaries : GeoDataFrame or None
        What ``pyrosm.OSM.get_boundaries()`` returns.
    config : OsmConfig, optional
        The mapping; defaults to :class:`OsmConfig`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``admin_units`` columns and polygon geometries; empty when nothing maps.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> b = gpd.GeoDataFrame(
    ...     {"id": [1, 2], "osm_type": ["relation"] * 2, "admin_level": ["8", "10"],
    ...      "name": ["城关街道", "东关村"], "ref": ["370285001", "370285001001"]},
    ...     geometry=[shapely.box(0, 0, 2, 2), shapely.box(0.5, 0.5, 1, 1)], crs=4326)
    >>> units = admin_units_from_boundaries(b)
    >>> units[["code", "level", "kind", "parent_code"]].values.tolist()
    [['370285001', 'town', 'street', None], ['370285001001', 'community', 'village', '370285001']]
    """
    config = config or OsmConfig()
    if boundaries is None or len(boundaries) == 0:
        return _empty("admin_units")
    raw = boundaries.reset_index(drop=True)
    levels = pd.to_numeric(_tag(raw, "admin_level"), errors="coerce")
    mapped = levels.map(lambda v: config.admin_levels.get(int(v)) if pd.notna(v) else None)
    polygonal = raw.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    keep = mapped.notna().to_numpy() & polygonal
    raw = raw.loc[keep].reset_index(drop=True)
    if len(raw) == 0:
        return _empty("admin_units")
    level = mapped[keep].reset_index(drop=True).astype(object)
    frame = pd.DataFrame(index=raw.index)
    code = pd.Series(pd.NA, index=raw.index, dtype="string")
    for key in config.admin_code_tags:
        code = code.fillna(_tag(raw, key))
    fallback = "osm-" + _col(raw, "osm_type").fillna("relation") + "-" + raw["id"].astype("string")
    frame["code"] = _text(code.fillna(fallback))
    name = _tag(raw, "name")
    frame["name"] = _text(name)
    frame["name_en"] = _text(_tag(raw, "name:en"))
    frame["level"] = level
    place = _tag(raw, "place").str.lower()
    village = (name.str.endswith("村").fillna(False) | place.isin(["village", "hamlet"])).to_numpy(
        dtype=bool
    )
    street = name.str.endswith("街道").fillna(False).to_numpy(dtype=bool)
    kind = np.full(len(raw), None, dtype=object)
    is_comm = (level == "community").to_numpy()
    kind[is_comm] = np.where(village[is_comm], "village", "community")
    is_town = (level == "town").to_numpy()
    kind[is_town] = np.where(street[is_town], "street", "town")
    frame["kind"] = kind
    geometry = gpd.GeoSeries(raw.geometry.to_numpy(), index=raw.index, crs=4326)
    frame["parent_code"] = _parents(frame, geometry)
    frame["source"] = "osm"
    frame["source_id"] = _source_ids(raw)
    return _finish("admin_units", frame, geometry)


_RANK = {"city": 0, "town": 1, "community": 2}


def _parents(frame: pd.DataFrame, geometry: gpd.GeoSeries) -> pd.Series:
    """Code of the smallest higher-level unit containing each unit's representative point."""
    rank = frame["level"].map(_RANK).to_numpy()
    points = gpd.GeoDataFrame(
        {"child": np.arange(len(frame))}, geometry=geometry.representative_point(), crs=4326
    )
    polys = gpd.GeoDataFrame(
        {"parent": np.arange(len(frame)), "area": shapely.area(np.asarray(geometry.values))},
        geometry=geometry.to_numpy(),
        crs=4326,
    )
    pairs = gpd.sjoin(points, polys, predicate="within", how="inner")
    pairs = pairs[rank[pairs["parent"].to_numpy()] < rank[pairs["child"].to_numpy()]]
    pairs = pairs.assign(prank=rank[pairs["parent"].to_numpy()])
    pairs = pairs.sort_values(["child", "prank", "area"], ascending=[True, False, True])
    best = pairs.drop_duplicates("child")
    out = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    codes = frame["code"].to_numpy()
    out.iloc[best["child"].to_numpy()] = codes[best["parent"].to_numpy()]
    return out


def _admin_units(osm: pyrosm.OSM, config: OsmConfig) -> gpd.GeoDataFrame:
    raw = _quiet(osm.get_boundaries, boundary_type="administrative")
    return admin_units_from_boundaries(raw, config)


# ----------------------------------------------------------------------------- entry point


def _open(path: Path) -> pyrosm.OSM:
    if not path.name.lower().endswith(".pbf"):
        raise UnsupportedFormat(f"{path.name}: OSM extracts must be .osm.pbf files", field="path")
    if not path.exists():
        raise BadInput(f"{path}: no such file", field="path")
    if path.is_dir() or path.stat().st_size == 0:
        raise BadInput(f"{path.name}: not an OSM extract (empty or a directory)", field="path")
    try:
        return _quiet(pyrosm.OSM, str(path))
    except Exception as exc:  # pyrosm raises anything from its decoder
        raise BadInput(f"{path.name}: cannot read the OSM extract ({exc})", field="path") from None


def read_osm(
    path: str | os.PathLike[str],
    *,
    config: OsmConfig | None = None,
    progress: Progress | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """Read buildings, roads, key places and admin boundaries from an OSM extract.

    Parameters
    ----------
    path : str or PathLike
        An ``.osm.pbf`` file (never downloaded: pass a file you have).
    config : OsmConfig, optional
        Estimation parameters and tag mappings (see :class:`OsmConfig`).
    progress : callable, optional
        ``progress(step, done, total)`` after each layer.

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        Keys ``buildings``, ``roads``, ``key_areas``, ``admin_units`` (empty
        when the extract has no administrative boundaries); each frame has the
        layer's model columns and WGS84 geometries, not yet repaired.

    Raises
    ------
    gridmap.common.errors.BadInput
        For a missing or unreadable file.
    gridmap.common.errors.UnsupportedFormat
        For a file that is not ``.pbf``.

    Examples
    --------
    >>> from pathlib import Path
    >>> import pyrosm
    >>> layers = read_osm(Path(pyrosm.__file__).parent / "data" / "test.osm.pbf")
    >>> sorted(layers), len(layers["admin_units"])
    (['admin_units', 'buildings', 'key_areas', 'roads'], 0)
    """
    config = config or OsmConfig()
    p = Path(path)
    notify(progress, "open extract", 0, len(OSM_LAYERS))
    osm = _open(p)
    readers = {
        "buildings": _buildings,
        "roads": _roads,
        "key_areas": _key_areas,
        "admin_units": _admin_units,
    }
    out: dict[str, gpd.GeoDataFrame] = {}
    for done, name in enumerate(OSM_LAYERS, start=1):
        try:
            out[name] = readers[name](osm, config)
        except (BadInput, UnsupportedFormat):
            raise
        except Exception as exc:  # pyrosm raises anything from its decoder
            raise BadInput(
                f"{p.name}: cannot read {name} from the OSM extract ({exc})", field="path"
            ) from None
        notify(progress, f"read {name}", done, len(OSM_LAYERS))
    return out
