"""Domain model v1: the layers gridmap stores and the columns each one has.

Names follow ``shared/design/domain.md``; the columns listed in
``architecture.md`` ("properties every consumer may rely on") are part of the
public contract and must never be renamed.

Every layer is a table with an integer ``id`` (store-assigned unless given), a
``source_key`` that makes imports idempotent, and, for spatial layers, a
``geometry`` column in WGS84 (EPSG:4326, x = longitude).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ADMIN_LEVELS",
    "COLUMN_TYPES",
    "EVENT_CATEGORIES",
    "EVENT_STATUSES",
    "KEY_AREA_KINDS",
    "LAYERS",
    "ROLES",
    "Column",
    "LayerSchema",
    "layer_schema",
]

ColumnType = Literal["text", "int", "float", "bool", "timestamp", "date", "text[]"]
COLUMN_TYPES: tuple[str, ...] = ("text", "int", "float", "bool", "timestamp", "date", "text[]")

#: Administrative levels: city (市) → town/street (镇/街道) → community/village (社区/村居).
ADMIN_LEVELS: dict[str, tuple[str, str]] = {
    "city": ("市", "City"),
    "town": ("镇/街道", "Town / street"),
    "community": ("社区/村居", "Community / village"),
}

#: Key-area kinds (重点区域 …) with zh-CN and English names.
KEY_AREA_KINDS: dict[str, tuple[str, str]] = {
    "key_area": ("重点区域", "Key area"),
    "main_street": ("主要街道", "Main street"),
    "important_intersection": ("重要路口", "Important intersection"),
    "key_place": ("重点场所", "Key place"),
}

#: First-level event categories (a configurable two-level taxonomy grows from these).
EVENT_CATEGORIES: dict[str, tuple[str, str]] = {
    "city_management": ("城市管理", "City management"),
    "dispute": ("矛盾纠纷", "Disputes"),
    "safety_hazard": ("安全隐患", "Safety hazards"),
    "epidemic": ("疫情防控", "Epidemic control"),
    "key_task": ("重点工作", "Key tasks"),
    "public_security": ("治安", "Public security"),
    "residents_request": ("群众诉求/意见", "Residents' requests and opinions"),
}

#: Event workflow states (GB/T 30428.8 and 综治 practice).
EVENT_STATUSES: dict[str, tuple[str, str]] = {
    "reported": ("上报", "Reported"),
    "accepted": ("受理", "Accepted"),
    "verified": ("核实", "Verified"),
    "registered": ("立案", "Registered"),
    "dispatched": ("派遣", "Dispatched"),
    "handling": ("处置", "Handling"),
    "inspecting": ("核查", "Inspecting"),
    "closed": ("结案", "Closed"),
    "rejected": ("退回", "Rejected"),
    "escalated": ("上报上级", "Escalated"),
}

#: Roles of people and systems using gridmap.
ROLES: dict[str, tuple[str, str]] = {
    "city_admin": ("市综治中心", "City centre administrator"),
    "town_coordinator": ("镇街综治中心", "Town coordinator"),
    "community_staff": ("村居/社区", "Community staff"),
    "grid_worker": ("网格员", "Grid worker"),
    "viewer": ("地图浏览", "Map viewer"),
    "external_system": ("外部系统", "External system"),
}


@dataclass(frozen=True)
class Column:
    """A non-geometry column of a layer."""

    name: str
    type: ColumnType
    title_zh: str = ""
    title_en: str = ""


@dataclass(frozen=True)
class LayerSchema:
    """What a stored layer looks like: its columns and geometry type.

    Parameters
    ----------
    name : str
        Table and layer name (part of the public contract).
    geometry_type : str or None
        ``"Polygon"`` (stored as MultiPolygon), ``"LineString"`` (stored as
        MultiLineString), ``"Point"`` or ``"Geometry"``; ``None`` for a table
        without geometry.
    columns : tuple of Column
        Attribute columns in order, excluding ``id``, ``source_key`` and
        ``geometry``.
    time_column : str or None
        Column used for ``datetime`` filters.
    """

    name: str
    geometry_type: str | None
    columns: tuple[Column, ...]
    title_zh: str = ""
    title_en: str = ""
    time_column: str | None = None
    id_type: Literal["int", "text"] = "int"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        """Attribute column names in order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        """Return the column called *name* (``KeyError`` if unknown)."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _c(name: str, type_: ColumnType, zh: str = "", en: str = "") -> Column:
    return Column(name, type_, zh, en)


_SOURCE = (_c("source", "text", "来源", "Source"), _c("source_id", "text", "来源编号", "Source id"))

LAYERS: dict[str, LayerSchema] = {
    s.name: s
    for s in (
        LayerSchema(
            "admin_units",
            "Polygon",
            (
                _c("code", "text", "行政区划代码", "Code"),
                _c("name", "text", "名称", "Name"),
                _c("name_en", "text", "英文名称", "English name"),
                _c("level", "text", "层级", "Level"),
                _c("kind", "text", "类型", "Kind"),
                _c("parent_code", "text", "上级代码", "Parent code"),
                *_SOURCE,
            ),
            "行政区划",
            "Administrative units",
        ),
        LayerSchema(
            "grids",
            "Polygon",
            (
                _c("code", "text", "网格编码", "Grid code"),
                _c("name", "text", "网格名称", "Name"),
                _c("community_code", "text", "所属社区", "Community code"),
                _c("households", "int", "户数", "Households"),
                _c("residents", "int", "人口", "Residents"),
                _c("buildings", "int", "楼栋数", "Buildings"),
                _c("workers", "text[]", "网格员", "Grid workers"),
                _c("valid_from", "timestamp", "生效时间", "Valid from"),
                _c("valid_to", "timestamp", "失效时间", "Valid to"),
                *_SOURCE,
            ),
            "网格",
            "Grids",
            time_column="valid_from",
        ),
        LayerSchema(
            "buildings",
            "Polygon",
            (
                _c("name", "text", "名称", "Name"),
                _c("address", "text", "地址", "Address"),
                _c("use", "text", "用途", "Use"),
                _c("floors", "int", "层数", "Floors"),
                _c("area_m2", "float", "占地面积(平方米)", "Footprint area (m²)"),
                _c("households", "int", "户数(估算)", "Households (estimated)"),
                _c("residents", "int", "人口(估算)", "Residents (estimated)"),
                _c("grid_code", "text", "网格编码", "Grid code"),
                *_SOURCE,
            ),
            "楼栋",
            "Buildings",
        ),
        LayerSchema(
            "roads",
            "LineString",
            (
                _c("name", "text", "道路名称", "Name"),
                _c("class", "text", "道路等级", "Road class"),
                _c("walkable", "bool", "可步行", "Walkable"),
                _c("drivable", "bool", "可通车", "Drivable"),
                _c("length_m", "float", "长度(米)", "Length (m)"),
                *_SOURCE,
            ),
            "道路",
            "Roads",
        ),
        LayerSchema(
            "key_areas",
            "Geometry",
            (
                _c("name", "text", "名称", "Name"),
                _c("kind", "text", "类型", "Kind"),
                _c("category", "text", "场所类别", "Place category"),
                _c("priority", "int", "优先级", "Priority"),
                _c("visits_per_day", "float", "每日巡查频次", "Required visits per day"),
                _c("community_code", "text", "所属社区", "Community code"),
                *_SOURCE,
            ),
            "重点区域",
            "Key areas",
        ),
        LayerSchema(
            "events",
            "Point",
            (
                _c("category", "text", "事件类别", "Category"),
                _c("subcategory", "text", "事件子类", "Subcategory"),
                _c("status", "text", "状态", "Status"),
                _c("urgency", "text", "紧急程度", "Urgency"),
                _c("description", "text", "描述", "Description"),
                _c("channel", "text", "来源渠道", "Channel"),
                _c("reporter", "text", "上报人", "Reporter"),
                _c("grid_code", "text", "网格编码", "Grid code"),
                _c("reported_at", "timestamp", "上报时间", "Reported at"),
                _c("closed_at", "timestamp", "结案时间", "Closed at"),
                _c("synthetic", "bool", "合成数据", "Synthetic"),
                *_SOURCE,
            ),
            "事件",
            "Events",
            time_column="reported_at",
        ),
        LayerSchema(
            "patrol_routes",
            "LineString",
            (
                _c("worker", "text", "巡查人员", "Worker"),
                _c("grid_code", "text", "网格编码", "Grid code"),
                _c("route_date", "date", "日期", "Date"),
                _c("mode", "text", "方式", "Mode"),
                _c("length_m", "float", "长度(米)", "Length (m)"),
                *_SOURCE,
            ),
            "巡查路线",
            "Patrol routes",
            time_column="route_date",
        ),
        LayerSchema(
            "workers",
            None,
            (
                _c("name", "text", "姓名", "Name"),
                _c("role", "text", "角色", "Role"),
                _c("area_code", "text", "负责区域", "Area code"),
                _c("grid_codes", "text[]", "负责网格", "Grids"),
                _c("phone", "text", "电话", "Phone"),
                *_SOURCE,
            ),
            "网格工作人员",
            "Workers",
        ),
    )
}


def layer_schema(name: str) -> LayerSchema:
    """Return the schema of layer *name*.

    Raises
    ------
    gridmap.errors.UnknownLayer
        If *name* is not a layer of the model.

    Examples
    --------
    >>> layer_schema("grids").geometry_type
    'Polygon'
    """
    from gridmap.errors import UnknownLayer

    try:
        return LAYERS[name]
    except KeyError:
        raise UnknownLayer(name, sorted(LAYERS)) from None
