"""The layer catalog: what each map and data layer is, how it looks and who may see it.

Driven by :data:`gridmap.common.model.LAYERS`: every layer of the model has a
:class:`LayerDef` here, with its zh-CN and English titles, geometry type, fields and
queryables (derived from the model's columns), map style, zoom range and the roles
allowed to see it and its personal fields. The same definition drives the OGC API
collections, the vector tiles and the folium rendering (:mod:`layers.render`).

The catalog is ordered for drawing, bottom to top: roads and buildings form a light
basemap, then administrative units, grids, key areas, events and patrol routes;
layers without geometry (``workers``) come last and are never drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from types import MappingProxyType
from typing import Any, Literal

from gridmap.common.errors import BadInput, UnknownLayer
from gridmap.common.model import (
    ADMIN_LEVELS,
    EVENT_CATEGORIES,
    EVENT_STATUSES,
    KEY_AREA_KINDS,
    LAYERS,
    ROLES,
    Column,
    ColumnType,
    LayerSchema,
)
from gridmap.security import disclosure as disclosure_policy

__all__ = [
    "ALL_ROLES",
    "CATALOG",
    "EVENT_STATUS_COLORS",
    "STAFF_ROLES",
    "VOCABULARIES",
    "FieldDef",
    "Lang",
    "LayerDef",
    "bilingual",
    "check_role",
    "get_layer",
    "label",
    "normalize_lang",
]

#: ``"zh"`` (zh-CN), ``"en"`` or ``"zh-en"`` (both: "中文 English").
Lang = Literal["zh", "en", "zh-en"]

#: Every role of the model.
ALL_ROLES: frozenset[str] = frozenset(ROLES)
#: People who run the grids; they may see personal data (within their area, which
#: the API enforces).
STAFF_ROLES: frozenset[str] = frozenset(
    {"city_admin", "town_coordinator", "community_staff", "grid_worker"}
)

#: Coded values with zh-CN and English names, by vocabulary.
VOCABULARIES: Mapping[str, Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "event_categories": MappingProxyType(EVENT_CATEGORIES),
        "event_statuses": MappingProxyType(EVENT_STATUSES),
        "admin_levels": MappingProxyType(ADMIN_LEVELS),
        "key_area_kinds": MappingProxyType(KEY_AREA_KINDS),
        "roles": MappingProxyType(ROLES),
    }
)

#: Event marker colours by workflow state: open states warm, work in progress blue,
#: closed green, rejected grey, escalated magenta.
EVENT_STATUS_COLORS: Mapping[str, str] = MappingProxyType(
    {
        "reported": "#d32f2f",
        "accepted": "#f57c00",
        "verified": "#fbc02d",
        "registered": "#afb42b",
        "dispatched": "#0288d1",
        "handling": "#1565c0",
        "inspecting": "#00897b",
        "closed": "#43a047",
        "rejected": "#9e9e9e",
        "escalated": "#ad1457",
    }
)

_BILINGUAL = {"zh-en", "bilingual", "zh+en", "zh-cn-en", "zh-cn+en"}


def normalize_lang(lang: str) -> Lang:
    """Return the display language *lang* as ``"zh"``, ``"en"`` or ``"zh-en"``.

    Parameters
    ----------
    lang : str
        ``"zh-CN"`` (or ``"zh"``, ``"zh_CN"``, ``"zh-Hans"``), ``"en"`` (or
        ``"en-US"`` …), or ``"zh-en"`` / ``"bilingual"`` for both.

    Returns
    -------
    {"zh", "en", "zh-en"}
        The normalized language.

    Raises
    ------
    gridmap.common.errors.BadInput
        If *lang* is none of these.

    Examples
    --------
    >>> normalize_lang("zh-CN"), normalize_lang("en-US"), normalize_lang("bilingual")
    ('zh', 'en', 'zh-en')
    """
    key = lang.strip().lower().replace("_", "-")
    if key in _BILINGUAL:
        return "zh-en"
    if key == "zh" or key.startswith("zh-"):
        return "zh"
    if key == "en" or key.startswith("en-"):
        return "en"
    raise BadInput(f"unknown language {lang!r}: use 'zh-CN', 'en' or 'zh-en'", field="lang")


def bilingual(zh: str, en: str, lang: str = "zh-en") -> str:
    """Pick the zh-CN text, the English text, or both ("中文 English").

    Parameters
    ----------
    zh, en : str
        The two texts; an empty one is left out.
    lang : str, default "zh-en"
        See :func:`normalize_lang`.

    Returns
    -------
    str
        The text to show.

    Examples
    --------
    >>> bilingual("网格", "Grids")
    '网格 Grids'
    >>> bilingual("网格", "Grids", "en")
    'Grids'
    """
    which = normalize_lang(lang)
    if which == "zh":
        return zh or en
    if which == "en":
        return en or zh
    return " ".join(t for t in (zh, en) if t) if zh != en else zh


def label(code: str, lang: str = "zh-en", *, vocabulary: str | None = None) -> str:
    """Return the display name of a coded value: event category or status, admin level, …

    Parameters
    ----------
    code : str
        The code, e.g. ``"safety_hazard"``, ``"closed"``, ``"town"``, ``"key_place"``.
    lang : str, default "zh-en"
        ``"zh-CN"``, ``"en"`` or ``"zh-en"`` (see :func:`normalize_lang`).
    vocabulary : str, optional
        Look only in this vocabulary of :data:`VOCABULARIES`; by default in all.

    Returns
    -------
    str
        The name; a code no vocabulary knows is returned unchanged (categories are
        a configurable taxonomy, so unknown codes are expected).

    Raises
    ------
    gridmap.common.errors.BadInput
        If *lang* or *vocabulary* is unknown.

    Examples
    --------
    >>> label("closed")
    '结案 Closed'
    >>> label("safety_hazard", "zh-CN")
    '安全隐患'
    >>> label("town", "en", vocabulary="admin_levels")
    'Town / street'
    >>> label("noise", "en")
    'noise'
    """
    if vocabulary is not None:
        if vocabulary not in VOCABULARIES:
            raise BadInput(
                f"unknown vocabulary {vocabulary!r}; known: {', '.join(VOCABULARIES)}",
                field="vocabulary",
            )
        vocabularies = [VOCABULARIES[vocabulary]]
    else:
        vocabularies = list(VOCABULARIES.values())
    for names in vocabularies:
        if code in names:
            zh, en = names[code]
            return bilingual(zh, en, lang)
    normalize_lang(lang)
    return code


def check_role(role: str) -> str:
    """Return *role* if the model knows it.

    Parameters
    ----------
    role : str
        A key of :data:`gridmap.common.model.ROLES`.

    Returns
    -------
    str
        *role*.

    Raises
    ------
    gridmap.common.errors.BadInput
        If the role is unknown.

    Examples
    --------
    >>> check_role("viewer")
    'viewer'
    """
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}; known: {', '.join(ROLES)}", field="role")
    return role


_JSON_TYPES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "text": {"type": "string"},
        "int": {"type": "integer"},
        "float": {"type": "number"},
        "bool": {"type": "boolean"},
        "timestamp": {"type": "string", "format": "date-time"},
        "date": {"type": "string", "format": "date"},
        "text[]": {"type": "array", "items": {"type": "string"}},
    }
)


class _Titled:
    """A thing with a zh-CN and an English title: fields and layers."""

    title_zh: str
    title_en: str

    def title(self, lang: str = "zh-en") -> str:
        """Return the title (a layer's title, a field's label) in *lang*.

        Parameters
        ----------
        lang : str, default "zh-en"
            See :func:`normalize_lang`.

        Returns
        -------
        str
            The title, e.g. ``"网格 Grids"`` or ``"户数 Households"``.

        Examples
        --------
        >>> CATALOG["grids"].title("zh-CN")
        '网格'
        >>> CATALOG["grids"].field("households").title()
        '户数 Households'
        """
        return bilingual(self.title_zh, self.title_en, lang)


@dataclass(frozen=True)
class FieldDef(_Titled):
    """A property of a layer, as shown to people and clients.

    Parameters
    ----------
    name : str
        Property (column) name.
    type : str
        Model column type (``"text"``, ``"int"``, ``"float"``, ``"bool"``,
        ``"timestamp"``, ``"date"``, ``"text[]"``).
    title_zh, title_en : str
        Field labels.
    personal : bool
        Personal data (个人信息): shown only to :attr:`LayerDef.personal_visible_to`.
    vocabulary : str or None
        Vocabulary of :data:`VOCABULARIES` its codes come from, if any.
    roles : frozenset of str or None
        Roles that may see the field (``None``: every role that sees the layer),
        e.g. the grids' event counts only for roles that see events.
    mask : {"name", "phone", "drop"} or None
        How a personal field is masked on maps, as the API masks it: names keep
        their first character (``张*``), phones their first 3 and last 4 digits
        (``138****1234``); ``drop`` leaves the value out. ``None`` for fields
        that are not personal.
    """

    name: str
    type: ColumnType
    title_zh: str
    title_en: str
    personal: bool = False
    vocabulary: str | None = None
    roles: frozenset[str] | None = None
    mask: Literal["name", "phone", "drop"] | None = None

    @property
    def json_schema(self) -> dict[str, Any]:
        """JSON-schema of the property (with ``title`` and, for coded fields, ``enum``).

        Examples
        --------
        >>> CATALOG["events"].field("reported_at").json_schema["format"]
        'date-time'
        """
        out: dict[str, Any] = {"title": self.title_en or self.name, **_JSON_TYPES[self.type]}
        if self.title_zh:
            out["x-title-zh"] = self.title_zh
        if self.vocabulary is not None:
            out["enum"] = list(VOCABULARIES[self.vocabulary])
        return out


@dataclass(frozen=True)
class LayerDef(_Titled):
    """What a layer is, how it looks on a map and who may see it.

    Parameters
    ----------
    name : str
        Layer name (part of the public contract, e.g. ``"grids"``).
    title_zh, title_en : str
        Layer titles.
    geometry_type : str or None
        ``"Polygon"``, ``"LineString"``, ``"Point"``, ``"Geometry"`` (any), or
        ``None`` for a layer without geometry.
    fields : tuple of FieldDef
        Properties, in the model's column order (without ``id`` and ``geometry``).
    style : Mapping
        Leaflet path options: ``color`` and ``weight``/``opacity`` of the outline,
        ``fill``, ``fillColor``, ``fillOpacity``, ``dashArray``, ``radius`` (points).
    min_zoom, max_zoom : int
        Web-Mercator zoom range in which the layer is drawn (vector tiles).
    visible_to : frozenset of str
        Roles that may see the layer.
    personal_visible_to : frozenset of str
        Roles that may see its personal fields.
    tooltip_fields, popup_fields : tuple of str
        Fields shown on hover and on click.
    color_by : str or None
        Field that colours features: categorically through ``palette`` or, for a
        number, along ``ramp``.
    palette : Mapping
        Colour by code of ``color_by``.
    ramp : tuple of str
        Colours from low to high values of a numeric ``color_by``.
    color_options : tuple of str
        Numeric fields a map viewer may colour the layer by instead (a selector on
        the map; the grids: households or workload index); ``color_by`` first.
    label_by : str or None
        Field written on each feature as a permanent map label (grid codes).
    time_column : str or None
        Field for ``datetime`` filters.
    id_type : {"int", "text"}
        Type of the feature ``id``.
    """

    name: str
    title_zh: str
    title_en: str
    geometry_type: str | None
    fields: tuple[FieldDef, ...]
    style: Mapping[str, Any]
    min_zoom: int = 0
    max_zoom: int = 22
    visible_to: frozenset[str] = ALL_ROLES
    personal_visible_to: frozenset[str] = STAFF_ROLES
    tooltip_fields: tuple[str, ...] = ()
    popup_fields: tuple[str, ...] = ()
    color_by: str | None = None
    palette: Mapping[str, str] = dc_field(default_factory=lambda: MappingProxyType({}))
    ramp: tuple[str, ...] = ()
    time_column: str | None = None
    id_type: Literal["int", "text"] = "int"
    color_options: tuple[str, ...] = ()
    label_by: str | None = None

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def is_spatial(self) -> bool:
        """Whether the layer has geometry (and can be drawn)."""
        return self.geometry_type is not None

    @property
    def field_names(self) -> tuple[str, ...]:
        """Property names in order."""
        return tuple(f.name for f in self.fields)

    @property
    def personal_fields(self) -> tuple[str, ...]:
        """Names of the fields holding personal data (e.g. ``events.reporter``)."""
        return tuple(f.name for f in self.fields if f.personal)

    def field(self, name: str) -> FieldDef:
        """Return the field *name*.

        Parameters
        ----------
        name : str
            Property name.

        Returns
        -------
        FieldDef
            The field.

        Raises
        ------
        KeyError
            If the layer has no such field.

        Examples
        --------
        >>> CATALOG["events"].field("reporter").personal
        True
        """
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def is_visible_to(self, role: str) -> bool:
        """Whether *role* may see this layer; an unknown role is refused by :func:`check_role`.

        Examples
        --------
        >>> CATALOG["events"].is_visible_to("viewer")
        False
        """
        return check_role(role) in self.visible_to

    def fields_for(self, role: str) -> tuple[FieldDef, ...]:
        """Return the fields *role* may see: personal fields only for staff roles.

        None at all when :meth:`is_visible_to` says the layer is hidden from *role*.

        Examples
        --------
        >>> "reporter" in [f.name for f in CATALOG["events"].fields_for("city_admin")]
        True
        >>> "worker" in [f.name for f in CATALOG["patrol_routes"].fields_for("viewer")]
        False
        """
        if not self.is_visible_to(role):
            return ()
        personal_ok = role in self.personal_visible_to
        return tuple(
            f
            for f in self.fields
            if (personal_ok or not f.personal) and (f.roles is None or role in f.roles)
        )

    @property
    def queryables(self) -> dict[str, dict[str, Any]]:
        """Filterable properties and their JSON-schema (OGC API Features ``/queryables``).

        Personal fields are not queryable.

        Examples
        --------
        >>> CATALOG["grids"].queryables["households"]["type"]
        'integer'
        >>> "reporter" in CATALOG["events"].queryables
        False
        """
        return self.queryables_for(None)

    def queryables_for(self, role: str | None) -> dict[str, dict[str, Any]]:
        """The queryables *role* may filter on (``None``: fields open to every role).

        A field shown only to some roles (e.g. the grids' event counts) is
        queryable only for them: a filter on a hidden field would reveal it.

        Examples
        --------
        >>> "events_total" in CATALOG["grids"].queryables_for("viewer")
        False
        >>> "events_total" in CATALOG["grids"].queryables_for("city_admin")
        True
        """
        out: dict[str, dict[str, Any]] = {
            "id": {"title": "Identifier", "x-title-zh": "编号", "type": _id_json_type(self)}
        }
        for f in self.fields:
            if f.personal or (f.roles is not None and (role is None or role not in f.roles)):
                continue
            out[f.name] = f.json_schema
        return out


def _id_json_type(layer: LayerDef) -> str:
    return "integer" if layer.id_type == "int" else "string"


@dataclass(frozen=True)
class _Spec:
    style: Mapping[str, Any]
    min_zoom: int = 0
    max_zoom: int = 22
    visible_to: frozenset[str] = ALL_ROLES
    personal: frozenset[str] = frozenset()
    tooltip: tuple[str, ...] = ()
    popup_exclude: frozenset[str] = frozenset({"source", "source_id"})
    color_by: str | None = None
    palette: Mapping[str, str] = dc_field(default_factory=dict)
    ramp: tuple[str, ...] = ()
    color_options: tuple[str, ...] = ()
    label_by: str | None = None
    field_roles: Mapping[str, frozenset[str]] = dc_field(default_factory=dict)
    #: How each personal field is masked (``name`` or ``phone``; any other: ``drop``).
    masks: Mapping[str, Literal["name", "phone"]] = dc_field(default_factory=dict)


#: Roles that see the events layer (items and tiles), and so the grids' event counts
#: (no counts for map viewers): from the one disclosure table (docs/roles.md).
_EVENT_ROLES: frozenset[str] = frozenset(
    role for role in ALL_ROLES if disclosure_policy.rule(role, "items").allowed
)
#: Event fields some role with the layer may not see (worker names, descriptions, …):
#: shown, and queryable, only to the roles the disclosure table gives them to.
_EVENT_FIELD_ROLES: dict[str, frozenset[str]] = {
    name: disclosure_policy.roles_seeing("items", name)
    for name in sorted(
        disclosure_policy.WORKER_FIELDS
        | disclosure_policy.EXACT_FIELDS
        | disclosure_policy.CONTACT_FIELDS
    )
    if name in {c.name for c in LAYERS["events"].columns}
    and name not in disclosure_policy.CONTACT_FIELDS  # personal: personal_visible_to decides
    and disclosure_policy.roles_seeing("items", name) != _EVENT_ROLES
}
_GRID_EVENT_FIELDS = (
    "events_total",
    "events_open",
    *(f"events_{code}" for code in EVENT_CATEGORIES),
    "events_per_month",
)

#: Household ramp of the grid choropleth (light yellow → deep red).
_HOUSEHOLD_RAMP = ("#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026")

_VOCABULARY_OF = {
    ("admin_units", "level"): "admin_levels",
    ("key_areas", "kind"): "key_area_kinds",
    ("events", "category"): "event_categories",
    ("events", "status"): "event_statuses",
    ("workers", "role"): "roles",
}

# Drawing order, bottom to top. Layers of the model not named here follow with the
# default spec (visible to staff only, until someone decides otherwise).
_SPECS: dict[str, _Spec] = {
    "roads": _Spec(
        style={"color": "#9e9e9e", "weight": 1.5, "opacity": 0.9, "fill": False},
        min_zoom=12,
        tooltip=("name", "class"),
    ),
    "buildings": _Spec(
        style={
            "color": "#8d6e63",
            "weight": 0.6,
            "opacity": 0.9,
            "fillColor": "#bcaaa4",
            "fillOpacity": 0.7,
        },
        min_zoom=14,
        tooltip=("name", "use", "floors"),
    ),
    "admin_units": _Spec(
        style={
            "color": "#424242",
            "weight": 2,
            "opacity": 0.9,
            "dashArray": "8 4",
            "fill": False,
        },
        min_zoom=6,
        tooltip=("name", "level", "code"),
    ),
    "grids": _Spec(
        style={
            "color": "#0d47a1",
            "weight": 3,
            "opacity": 1.0,
            "fillColor": "#fed976",
            "fillOpacity": 0.3,
        },
        min_zoom=12,
        personal=frozenset({"workers"}),
        # The statistics (gridmap.division.stats) on hover; a choropleth of households
        # or of the workload index, chosen on the map; codes as labels.
        tooltip=(
            "code",
            "name",
            "households",
            "residents",
            "buildings",
            "area_m2",
            "street_length_m",
            "events_total",
            "events_open",
            "workload",
        ),
        # A compact popup (it fits in 400 × 500 px): the statistics a coordinator
        # reads at a glance. The per-category event counts, the end of validity,
        # the workload hours and the statistics' time stay in the API
        # (/collections/grids/items).
        popup_exclude=frozenset(
            {
                "source",
                "source_id",
                "stats_from",
                "stats_at",
                "valid_to",
                "key_area_visits",
                "workload_hours",
                *(f"events_{code}" for code in EVENT_CATEGORIES),
            }
        ),
        masks={"workers": "name"},
        color_by="households",
        ramp=_HOUSEHOLD_RAMP,
        color_options=("households", "workload"),
        label_by="code",
        field_roles={name: _EVENT_ROLES for name in _GRID_EVENT_FIELDS},
    ),
    "key_areas": _Spec(
        style={
            "color": "#e65100",
            "weight": 2,
            "opacity": 1.0,
            "fillColor": "#ff9800",
            "fillOpacity": 0.3,
            "radius": 8,
        },
        min_zoom=12,
        tooltip=("name", "kind"),
    ),
    "events": _Spec(
        style={
            "color": "#263238",
            "weight": 1,
            "opacity": 1.0,
            "fillColor": "#607d8b",
            "fillOpacity": 0.85,
            "radius": 7,
        },
        min_zoom=10,
        visible_to=_EVENT_ROLES,
        # reported_by (v25): the reporting worker's account, a person too.
        personal=frozenset({"reporter", "contact", "reported_by"}),
        masks={"reporter": "name", "contact": "phone", "reported_by": "name"},
        tooltip=("category", "status", "reported_at"),
        color_by="status",
        palette=EVENT_STATUS_COLORS,
        # The stored H3 cells (migration 011) are an index for heat maps, not a
        # property: 64-bit integers JavaScript clients cannot hold exactly.
        field_roles={
            **{f"h3_r{r}": frozenset() for r in range(7, 12)},
            **_EVENT_FIELD_ROLES,
        },
    ),
    "patrol_routes": _Spec(
        style={"color": "#8e24aa", "weight": 4, "opacity": 0.85, "dashArray": "10 6"},
        min_zoom=12,
        personal=frozenset({"worker"}),
        masks={"worker": "name"},
        tooltip=("grid_code", "route_date", "mode"),
    ),
    # Sensitive (GPS tracks): never published as a collection or tile layer; only
    # /patrol/tracks serves them, to the worker, coordinators and auditors.
    "patrol_tracks": _Spec(
        style={"color": "#00897b", "weight": 3, "opacity": 0.8},
        min_zoom=12,
        visible_to=frozenset(),
        personal=frozenset({"worker", "uploaded_by"}),
        masks={"worker": "name", "uploaded_by": "name"},
        tooltip=("grid_code", "track_date"),
    ),
    # Door-knock visits sit on households' doors: precise home points, never published.
    "doorknock_visits": _Spec(
        style={"color": "#6d4c41", "weight": 1, "opacity": 0.9},
        min_zoom=14,
        visible_to=frozenset(),
        personal=frozenset({"worker", "note"}),
        masks={"worker": "name"},
        tooltip=("grid_code", "status"),
    ),
    "workers": _Spec(
        style={},
        visible_to=STAFF_ROLES | {"external_system"},
        personal=frozenset({"name", "phone"}),
        masks={"name": "name", "phone": "phone"},
        tooltip=("role", "area_code"),
    ),
}

_DEFAULT_SPEC = _Spec(
    style={"color": "#546e7a", "weight": 2, "opacity": 0.9, "fillOpacity": 0.2, "radius": 6},
    visible_to=STAFF_ROLES,
)


def _field(layer: str, column: Column, spec: _Spec) -> FieldDef:
    return FieldDef(
        column.name,
        column.type,
        column.title_zh,
        column.title_en,
        personal=column.name in spec.personal,
        vocabulary=_VOCABULARY_OF.get((layer, column.name)),
        roles=spec.field_roles.get(column.name),
        mask=spec.masks.get(column.name, "drop") if column.name in spec.personal else None,
    )


def _layer_def(schema: LayerSchema, spec: _Spec) -> LayerDef:
    fields = tuple(_field(schema.name, c, spec) for c in schema.columns)
    names = {f.name for f in fields}
    named = set(spec.tooltip) | spec.personal | ({spec.color_by} if spec.color_by else set())
    named |= set(spec.color_options) | ({spec.label_by} if spec.label_by else set())
    named |= set(spec.field_roles)
    unknown = named - names
    if unknown:  # a spec drifted from the model
        raise KeyError(f"layer {schema.name!r} has no field(s) {sorted(unknown)}")
    return LayerDef(
        name=schema.name,
        title_zh=schema.title_zh,
        title_en=schema.title_en,
        geometry_type=schema.geometry_type,
        fields=fields,
        style=MappingProxyType(dict(spec.style)),
        min_zoom=spec.min_zoom,
        max_zoom=spec.max_zoom,
        visible_to=spec.visible_to,
        tooltip_fields=spec.tooltip,
        popup_fields=tuple(f.name for f in fields if f.name not in spec.popup_exclude),
        color_by=spec.color_by,
        palette=MappingProxyType(dict(spec.palette)),
        ramp=spec.ramp,
        time_column=schema.time_column,
        id_type=schema.id_type,
        color_options=spec.color_options,
        label_by=spec.label_by,
    )


def _build_catalog() -> dict[str, LayerDef]:
    order = [n for n in _SPECS if n in LAYERS] + [n for n in LAYERS if n not in _SPECS]
    spatial = [n for n in order if LAYERS[n].geometry_type is not None]
    other = [n for n in order if LAYERS[n].geometry_type is None]
    return {n: _layer_def(LAYERS[n], _SPECS.get(n, _DEFAULT_SPEC)) for n in spatial + other}


#: Every layer of the model, in drawing order (bottom to top; layers without geometry last).
CATALOG: Mapping[str, LayerDef] = MappingProxyType(_build_catalog())


def get_layer(name: str) -> LayerDef:
    """Return the catalog entry of layer *name*.

    Parameters
    ----------
    name : str
        Layer name, e.g. ``"grids"``.

    Returns
    -------
    LayerDef
        The layer.

    Raises
    ------
    gridmap.common.errors.UnknownLayer
        If there is no such layer.

    Examples
    --------
    >>> get_layer("grids").title()
    '网格 Grids'
    >>> get_layer("parks")
    Traceback (most recent call last):
    ...
    gridmap.common.errors.UnknownLayer: unknown layer 'parks'; known layers: ...
    """
    try:
        return CATALOG[name]
    except KeyError:
        raise UnknownLayer(name, list(CATALOG)) from None
