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
    #: Personal data encrypted at rest (AES-256-GCM, :mod:`gridmap.storage.fieldcrypt`):
    #: the stores encrypt it on write and decrypt it on read; it cannot be filtered on.
    encrypted: bool = False


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


def _c(
    name: str, type_: ColumnType, zh: str = "", en: str = "", *, encrypted: bool = False
) -> Column:
    return Column(name, type_, zh, en, encrypted)


_SOURCE = (_c("source", "text", "来源", "Source"), _c("source_id", "text", "来源编号", "Source id"))

#: Per-grid statistics (migration 009). Events by category get one integer column
#: per first-level category of :data:`EVENT_CATEGORIES` (``events_<category>``), so
#: they are typed queryables, CQL filters, tile properties and choropleth values.
_GRID_STATISTICS = (
    _c("area_m2", "float", "面积(平方米)", "Area (m²)"),
    _c("street_length_m", "float", "街巷长度(米)", "Street length (m)"),
    _c("key_area_visits", "float", "重点区域巡查(次/日)", "Key-area visits required per day"),
    _c("events_total", "int", "事件数(统计期)", "Events (statistics period)"),
    _c("events_open", "int", "未结事件", "Open events"),
    *(
        _c(f"events_{code}", "int", f"事件:{zh}", f"Events: {en}")
        for code, (zh, en) in EVENT_CATEGORIES.items()
    ),
    _c("events_per_month", "float", "月均事件数", "Events per month"),
    _c("workload_hours", "float", "工作量(小时/月)", "Workload (hours per month)"),
    _c("workload", "float", "工作量指数", "Workload index"),
    _c("stats_from", "timestamp", "统计起始", "Statistics from"),
    _c("stats_at", "timestamp", "统计时间", "Statistics as of"),
)

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
                # v23 (023_unit_validity_documents): a closed unit keeps its row
                # (history) with valid_to set (``gridmap units close``, gridmap.units.hierarchy).
                _c("valid_from", "timestamp", "生效时间", "Valid from"),
                _c("valid_to", "timestamp", "失效时间", "Valid to"),
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
                # v9 (009_grid_statistics): per-grid statistics, refreshed by
                # ``gridmap grids stats`` and after every division (gridmap.division.stats).
                *_GRID_STATISTICS,
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
                # v24 (024_event_patrols): key areas in time for event plans
                # (gridmap.patrol.eventplan): temporary areas have a validity; an
                # area with frequency_min is visited at least that often.
                _c("valid_from", "timestamp", "生效时间", "Valid from"),
                _c("valid_to", "timestamp", "失效时间", "Valid to"),
                _c("frequency_min", "float", "巡查间隔(分钟)", "Visit every (minutes)"),
                _c("dwell_min", "float", "停留时间(分钟)", "Dwell (minutes)"),
                _c("hotspot_cells", "text[]", "来源热点单元", "Hot-spot cells"),
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
                # v25: the name a citizen or the hotline gives, encrypted at rest.
                _c("reporter", "text", "上报人", "Reporter", encrypted=True),
                _c("grid_code", "text", "网格编码", "Grid code"),
                _c("reported_at", "timestamp", "上报时间", "Reported at"),
                _c("closed_at", "timestamp", "结案时间", "Closed at"),
                _c("synthetic", "bool", "合成数据", "Synthetic"),
                *_SOURCE,
                # v3 (003_events_workflow): intake, routing and workflow.
                _c("kind", "text", "类型", "Kind"),
                _c("version", "int", "版本", "Version"),
                _c("duplicate_of", "int", "重复于", "Duplicate of"),
                _c("community_code", "text", "所属社区", "Community code"),
                _c("town_code", "text", "所属镇街", "Town code"),
                _c("assigned_to", "text[]", "责任网格员", "Assigned to"),
                _c("responsible", "text", "责任单位", "Responsible party"),
                _c("step_due_at", "timestamp", "本环节时限", "Step due at"),
                _c("due_at", "timestamp", "办结时限", "Due at"),
                _c("self_handled", "bool", "自处理", "Self-handled"),
                _c("rework_count", "int", "返工次数", "Rework count"),
                _c("extension_count", "int", "延期次数", "Extension count"),
                _c("pending_extension_hours", "float", "待批延期(小时)", "Pending extension (h)"),
                _c("escalated_to", "text", "上报至", "Escalated to"),
                _c("supervised_at", "timestamp", "督办时间", "Supervised at"),
                _c("updated_at", "timestamp", "更新时间", "Updated at"),
                _c("photos", "text[]", "照片", "Photos"),
                _c("contact", "text", "联系方式", "Contact", encrypted=True),
                # v11 (011_events_h3): the H3 cells of the point at resolutions 7–11,
                # filled on write; heat maps count per cell in SQL (gridmap.analytics.queries).
                *(
                    _c(f"h3_r{r}", "int", f"H3单元({r}级)", f"H3 cell (resolution {r})")
                    for r in (7, 8, 9, 10, 11)
                ),
                # v19 (019_event_observation): what the phone app sends with a report,
                # and the reporter's own grid when the point lay just outside it.
                _c("observed_at", "timestamp", "发现时间", "Observed at"),
                _c("accuracy_m", "float", "定位精度(米)", "Location accuracy (m)"),
                _c("reporter_grid_code", "text", "上报人所属网格", "Reporter's grid"),
                # v25 (025_event_reporter_encryption): the signed-in account that
                # reported (plain: the KPI key, "my reports" and the audit).
                _c("reported_by", "text", "上报账号", "Reported by (account)"),
                # v28 (028_event_media_url): an Open311 request's media_url, as given.
                _c("media_url", "text", "媒体链接", "Media URL"),
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
                # v24 (024_event_patrols): event plans' shift routes (mode "event";
                # grid_code holds the plan's area code): the plan, shift and its
                # validity, the timetable (JSON) and each position's time (JSON).
                _c("plan_id", "int", "安保方案", "Plan id"),
                _c("shift", "int", "班次", "Shift"),
                _c("valid_from", "timestamp", "生效时间", "Valid from"),
                _c("valid_to", "timestamp", "失效时间", "Valid to"),
                _c("work_min", "float", "工作量(分钟)", "Load (minutes)"),
                _c("timetable", "text", "时间表(JSON)", "Timetable (JSON)"),
                _c("times_s", "text", "途经时刻(秒,JSON)", "Times of positions (s, JSON)"),
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
        LayerSchema(
            "event_transitions",
            None,
            (
                _c("event_id", "int", "事件编号", "Event id"),
                _c("seq", "int", "序号", "Sequence"),
                _c("action", "text", "操作", "Action"),
                _c("from_status", "text", "原状态", "From status"),
                _c("to_status", "text", "新状态", "To status"),
                _c("actor", "text", "操作人", "Actor"),
                _c("actor_role", "text", "操作人角色", "Actor role"),
                _c("at", "timestamp", "时间", "At"),
                _c("note", "text", "说明", "Note"),
                _c("photos", "text[]", "照片", "Photos"),
                _c("details", "text", "详情(JSON)", "Details (JSON)"),
            ),
            "事件流转记录",
            "Event transitions",
            time_column="at",
        ),
        LayerSchema(
            "idempotency_keys",
            None,
            (
                _c("principal", "text", "调用方", "Principal"),
                _c("key", "text", "幂等键", "Idempotency key"),
                _c("request_hash", "text", "请求摘要", "Request hash"),
                _c("status_code", "int", "状态码", "Status code"),
                _c("response", "text", "响应(JSON)", "Response (JSON)"),
                _c("event_id", "int", "事件编号", "Event id"),
                _c("created_at", "timestamp", "时间", "Created at"),
            ),
            "幂等键",
            "Idempotency keys",
        ),
    )
}

# Security and the resident registry (issue 5, migration 004): tables without
# geometry, never published as collections. Personal fields are stored
# encrypted (``*_enc``), with a blind index (``*_index``) for exact lookup and
# the masked form (``*_masked``) that roles without unmask see.
LAYERS.update(
    {
        s.name: s
        for s in (
            LayerSchema(
                "users",
                None,
                (
                    _c("name", "text", "用户名", "User name"),
                    _c("role", "text", "角色", "Role"),
                    _c("areas", "text[]", "负责区域", "Areas"),
                    _c("can_unmask", "bool", "可查看明文", "May unmask"),
                    _c("password_hash", "text", "密码摘要", "Password hash"),
                    _c("api_key_hash", "text", "密钥摘要", "API key hash"),
                    _c("disabled", "bool", "已停用", "Disabled"),
                    _c("created_at", "timestamp", "创建时间", "Created at"),
                ),
                "用户",
                "Users",
            ),
            LayerSchema(
                "audit_log",
                None,
                (
                    _c("at", "timestamp", "时间", "Time"),
                    _c("actor", "text", "操作人", "Actor"),
                    _c("role", "text", "角色", "Role"),
                    _c("action", "text", "操作", "Action"),
                    _c("target", "text", "对象", "Target"),
                    _c("detail", "text", "详情", "Detail"),
                    # v30: grid/community/town code of what the entry concerns
                    _c("area_code", "text", "区域编码", "Area code"),
                ),
                "审计日志",
                "Audit log",
                time_column="at",
                extra={"append_only": "true"},
            ),
            LayerSchema(
                "households",
                None,
                (
                    _c("household_no", "text", "户号", "Household number"),
                    _c("kind", "text", "户别", "Kind"),
                    _c("address", "text", "地址", "Address"),
                    _c("building_id", "int", "楼栋", "Building"),
                    _c("grid_code", "text", "网格编码", "Grid code"),
                    _c("created_by", "text", "登记人", "Registered by"),
                    _c("created_at", "timestamp", "登记时间", "Registered at"),
                ),
                "户",
                "Households",
            ),
            LayerSchema(
                "residents",
                None,
                (
                    _c("household_id", "int", "所属户", "Household"),
                    _c("grid_code", "text", "网格编码", "Grid code"),
                    _c("category", "text", "人口类别", "Category"),
                    _c("name_enc", "text", "姓名(密文)", "Name (encrypted)"),
                    _c("name_masked", "text", "姓名", "Name (masked)"),
                    _c("id_number_enc", "text", "身份证号(密文)", "ID number (encrypted)"),
                    _c("id_number_index", "text", "身份证号索引", "ID number blind index"),
                    _c("id_number_masked", "text", "身份证号", "ID number (masked)"),
                    _c("phone_enc", "text", "电话(密文)", "Phone (encrypted)"),
                    _c("phone_index", "text", "电话索引", "Phone blind index"),
                    _c("phone_masked", "text", "电话", "Phone (masked)"),
                    _c("gender", "text", "性别", "Gender"),
                    _c("birth_year", "int", "出生年份", "Birth year"),
                    _c("created_by", "text", "登记人", "Registered by"),
                    _c("created_at", "timestamp", "登记时间", "Registered at"),
                    # v23: the document of id_number (gridmap.population.documents); NULL is
                    # the resident ID card (居民身份证).
                    _c("id_type", "text", "证件类型", "Document type"),
                ),
                "实有人口",
                "Residents",
            ),
        )
    }
)


# Patrol tracks (issue 9, migration 005): workers' GPS tracks are sensitive
# personal data (个人信息保护法). Never published as a collection; served only
# through ``/patrol/tracks`` to the worker, their coordinators and auditors.
LAYERS["patrol_tracks"] = LayerSchema(
    "patrol_tracks",
    "LineString",
    (
        _c("worker", "text", "巡查人员", "Worker"),
        _c("grid_code", "text", "网格编码", "Grid code"),
        _c("started_at", "timestamp", "开始时间", "Started at"),
        _c("ended_at", "timestamp", "结束时间", "Ended at"),
        _c("track_date", "date", "日期", "Date"),
        _c("point_count", "int", "定位点数", "Point count"),
        _c("length_m", "float", "长度(米)", "Length (m)"),
        _c("offsets_s", "text", "定位时刻(秒)", "Fix offsets (s)"),
        _c("flags", "text[]", "异常标记", "Flags"),
        _c("crs_in", "text", "原坐标系", "Input CRS"),
        _c("uploaded_by", "text", "上传人", "Uploaded by"),
        _c("uploaded_at", "timestamp", "上传时间", "Uploaded at"),
        *_SOURCE,
    ),
    "巡查轨迹",
    "Patrol tracks",
    time_column="started_at",
    extra={"sensitive": "true"},
)


def layer_schema(name: str) -> LayerSchema:
    """Return the schema of layer *name*.

    Raises
    ------
    gridmap.common.errors.UnknownLayer
        If *name* is not a layer of the model.

    Examples
    --------
    >>> layer_schema("grids").geometry_type
    'Polygon'
    """
    from gridmap.common.errors import UnknownLayer

    try:
        return LAYERS[name]
    except KeyError:
        raise UnknownLayer(name, sorted(LAYERS)) from None


# Door-knocking campaigns (issue 10, migration 006): a campaign over an area;
# one visit row per household and outcome (visited → verified → mobilised).
# The place of a visit is a precise home point (personal data): visits are
# never published as a collection.
LAYERS["doorknock_campaigns"] = LayerSchema(
    "doorknock_campaigns",
    None,
    (
        _c("name", "text", "行动名称", "Campaign name"),
        _c("area_code", "text", "行动范围", "Area code"),
        _c("starts_at", "timestamp", "开始时间", "Starts at"),
        _c("ends_at", "timestamp", "结束时间", "Ends at"),
        _c("created_by", "text", "创建人", "Created by"),
        _c("created_at", "timestamp", "创建时间", "Created at"),
        *_SOURCE,
    ),
    "敲门行动",
    "Door-knocking campaigns",
    time_column="starts_at",
)
LAYERS["doorknock_visits"] = LayerSchema(
    "doorknock_visits",
    "Point",
    (
        _c("campaign_id", "int", "行动编号", "Campaign id"),
        _c("household_id", "int", "户", "Household"),
        _c("grid_code", "text", "网格编码", "Grid code"),
        _c("worker", "text", "走访人员", "Worker"),
        _c("status", "text", "走访结果", "Outcome"),
        _c("visited_at", "timestamp", "走访时间", "Visited at"),
        _c("data_correct", "bool", "信息准确", "Data correct"),
        _c("satisfied", "bool", "群众满意", "Resident satisfied"),
        _c("note", "text", "说明", "Note"),
    ),
    "入户走访",
    "Door-knocking visits",
    time_column="visited_at",
    extra={"sensitive": "true"},
)


# Event security plans (issue 21, migration 024): one row per plan made by
# ``POST /patrol/plans`` / ``gridmap patrol plan-event``; its shift routes are
# rows of ``patrol_routes`` with this id in ``plan_id``. No geometry (the area is
# kept as WKT): plans are served by /patrol/plans, not as a collection.
LAYERS["patrol_plans"] = LayerSchema(
    "patrol_plans",
    None,
    (
        _c("name", "text", "方案名称", "Plan name"),
        _c("area_code", "text", "方案范围", "Area code"),
        _c("grid_codes", "text[]", "涉及网格", "Grids"),
        _c("starts_at", "timestamp", "开始时间", "Starts at"),
        _c("ends_at", "timestamp", "结束时间", "Ends at"),
        _c("road_classes", "text[]", "主要街道等级", "Main street classes"),
        _c("workers", "text[]", "值班人员", "Workers"),
        _c("area_wkt", "text", "范围(WKT)", "Area (WKT)"),
        _c("unmet", "text", "未满足(JSON)", "Not met (JSON)"),
        _c("summary", "text", "概要(JSON)", "Summary (JSON)"),
        _c("request", "text", "请求(JSON)", "Request (JSON)"),
        _c("created_by", "text", "创建人", "Created by"),
        _c("created_at", "timestamp", "创建时间", "Created at"),
        *_SOURCE,
    ),
    "安保巡逻方案",
    "Event patrol plans",
    time_column="starts_at",
)


# Webhooks (issue 24, migration 027, gridmap.events.webhooks): subscriptions, the outbox
# written in the transaction of each event change, and one delivery per
# subscription and change (pending → delivered, or dead: the dead-letter list).
# Not collections: served by /subscriptions only.
LAYERS["webhook_subscriptions"] = LayerSchema(
    "webhook_subscriptions",
    None,
    (
        _c("url", "text", "接收地址", "URL"),
        _c("secret", "text", "签名密钥", "Signing secret", encrypted=True),
        _c("event_types", "text[]", "事件类型", "Event types"),
        _c("areas", "text[]", "范围", "Areas"),
        _c("owner", "text", "订阅人", "Owner"),
        _c("owner_role", "text", "订阅人角色", "Owner role"),
        _c("active", "bool", "启用", "Active"),
        _c("created_at", "timestamp", "创建时间", "Created at"),
        *_SOURCE,
    ),
    "事件订阅",
    "Webhook subscriptions",
)
LAYERS["webhook_outbox"] = LayerSchema(
    "webhook_outbox",
    None,
    (
        _c("event_id", "int", "事件编号", "Event id"),
        _c("grid_code", "text", "网格编码", "Grid code"),
        _c("kind", "text", "变化类型", "Kind"),
        _c("payload", "text", "内容(JSON)", "Payload (JSON)"),
        _c("state", "text", "状态", "State"),
        _c("created_at", "timestamp", "创建时间", "Created at"),
    ),
    "事件推送发件箱",
    "Webhook outbox",
)
LAYERS["webhook_deliveries"] = LayerSchema(
    "webhook_deliveries",
    None,
    (
        _c("delivery_id", "text", "投递编号", "Delivery id"),
        _c("subscription_id", "int", "订阅编号", "Subscription id"),
        _c("outbox_id", "int", "发件编号", "Outbox id"),
        _c("event_id", "int", "事件编号", "Event id"),
        _c("kind", "text", "变化类型", "Kind"),
        _c("status", "text", "投递状态", "Status"),
        _c("attempts", "int", "尝试次数", "Attempts"),
        _c("next_attempt_at", "timestamp", "下次尝试", "Next attempt at"),
        _c("last_error", "text", "最近错误", "Last error"),
        _c("last_status", "int", "最近状态码", "Last HTTP status"),
        _c("delivered_at", "timestamp", "送达时间", "Delivered at"),
        _c("created_at", "timestamp", "创建时间", "Created at"),
    ),
    "事件推送投递",
    "Webhook deliveries",
    time_column="created_at",
)
