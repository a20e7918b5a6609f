from __future__ import annotations

import dataclasses
import re

import pytest

from gridmap.common.errors import BadInput, UnknownLayer
from gridmap.common.model import (
    ADMIN_LEVELS,
    EVENT_CATEGORIES,
    EVENT_STATUSES,
    KEY_AREA_KINDS,
    LAYERS,
    ROLES,
)
from layers.catalog import (
    CATALOG,
    EVENT_STATUS_COLORS,
    STAFF_ROLES,
    VOCABULARIES,
    LayerDef,
    bilingual,
    check_role,
    get_layer,
    label,
    normalize_lang,
)

DRAWING_ORDER = [
    "roads",
    "buildings",
    "admin_units",
    "grids",
    "key_areas",
    "events",
    "patrol_routes",
    "patrol_tracks",  # sensitive: drawable, but visible to no role as a collection
    "doorknock_visits",  # home points: never published
]
HEX = re.compile(r"^#[0-9a-f]{6}$")


def test_catalog_covers_the_model_in_drawing_order() -> None:
    assert set(CATALOG) == set(LAYERS)
    assert list(CATALOG)[: len(DRAWING_ORDER)] == DRAWING_ORDER
    spatial = [n for n, d in CATALOG.items() if d.is_spatial]
    assert spatial == DRAWING_ORDER
    assert not CATALOG["workers"].is_spatial
    # plain tables (workers, users, …) come after every drawable layer
    assert all(not d.is_spatial for d in list(CATALOG.values())[len(DRAWING_ORDER) :])


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_def_follows_the_model(name: str) -> None:
    schema, layer = LAYERS[name], CATALOG[name]
    assert layer.name == name
    assert (layer.title_zh, layer.title_en) == (schema.title_zh, schema.title_en)
    assert layer.geometry_type == schema.geometry_type
    assert layer.time_column == schema.time_column
    assert [(f.name, f.type, f.title_zh, f.title_en) for f in layer.fields] == [
        (c.name, c.type, c.title_zh, c.title_en) for c in schema.columns
    ]
    assert set(layer.tooltip_fields) <= set(layer.field_names)
    assert set(layer.popup_fields) <= set(layer.field_names)
    assert "source_id" not in layer.popup_fields
    assert 0 <= layer.min_zoom <= layer.max_zoom <= 24
    assert layer.visible_to <= set(ROLES)
    assert layer.personal_visible_to <= set(ROLES)


def test_get_layer() -> None:
    assert get_layer("grids") is CATALOG["grids"]
    with pytest.raises(UnknownLayer, match=r"unknown layer 'parks'.*grids") as info:
        get_layer("parks")
    assert isinstance(info.value, KeyError)


def test_layer_def_is_frozen_and_hashable() -> None:
    grids = CATALOG["grids"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        grids.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        grids.style["weight"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        grids.palette["x"] = "#000000"  # type: ignore[index]
    assert {grids, CATALOG["roads"]} == {CATALOG["roads"], grids}
    assert isinstance(grids, LayerDef)


def test_queryables_types() -> None:
    grids = CATALOG["grids"].queryables
    assert grids["id"]["type"] == "integer"
    assert grids["code"]["type"] == "string"
    assert grids["households"]["type"] == "integer"
    assert grids["valid_from"] == {
        "title": "Valid from",
        "x-title-zh": "生效时间",
        "type": "string",
        "format": "date-time",
    }
    assert CATALOG["buildings"].queryables["area_m2"]["type"] == "number"
    assert CATALOG["roads"].queryables["walkable"]["type"] == "boolean"
    assert CATALOG["patrol_routes"].queryables["route_date"]["format"] == "date"
    events = CATALOG["events"].queryables
    assert events["status"]["enum"] == list(EVENT_STATUSES)
    assert events["category"]["enum"] == list(EVENT_CATEGORIES)
    assert CATALOG["admin_units"].queryables["level"]["enum"] == list(ADMIN_LEVELS)
    assert CATALOG["key_areas"].queryables["kind"]["enum"] == list(KEY_AREA_KINDS)


def test_personal_data_is_marked_and_hidden_from_viewers() -> None:
    assert set(CATALOG["events"].personal_fields) == {"reporter", "contact", "reported_by"}
    assert CATALOG["patrol_routes"].personal_fields == ("worker",)
    assert CATALOG["grids"].personal_fields == ("workers",)
    assert set(CATALOG["workers"].personal_fields) == {"name", "phone"}
    for layer in CATALOG.values():
        assert not set(layer.personal_fields) & set(layer.queryables)
        assert layer.personal_visible_to <= STAFF_ROLES
        for f in layer.fields_for("viewer"):
            assert not f.personal
    assert "reporter" in [f.name for f in CATALOG["events"].fields_for("grid_worker")]
    assert "reporter" not in [f.name for f in CATALOG["events"].fields_for("external_system")]


def test_visibility_by_role() -> None:
    for name in ("roads", "buildings", "admin_units", "grids", "key_areas", "patrol_routes"):
        assert CATALOG[name].is_visible_to("viewer")
    assert not CATALOG["events"].is_visible_to("viewer")
    assert CATALOG["events"].fields_for("viewer") == ()
    assert not CATALOG["workers"].is_visible_to("viewer")
    assert CATALOG["workers"].is_visible_to("town_coordinator")
    with pytest.raises(BadInput, match="unknown role"):
        CATALOG["grids"].is_visible_to("mayor")
    assert check_role("viewer") == "viewer"


def test_styles_read_well() -> None:
    style = {n: CATALOG[n].style for n in DRAWING_ORDER}
    for name, s in style.items():
        assert HEX.match(s["color"]), name
        assert 0 < s["opacity"] <= 1
    # Grids are the most prominent outlines; roads are thin grey lines (the basemap).
    assert style["grids"]["weight"] == max(
        s["weight"] for n, s in style.items() if n != "patrol_routes"
    )
    assert style["roads"]["weight"] <= 2 and style["roads"]["fill"] is False
    r, g, b = (int(style["roads"]["color"][i : i + 2], 16) for i in (1, 3, 5))
    assert max(r, g, b) - min(r, g, b) < 16, "roads are grey"
    r, g, b = (int(style["buildings"]["fillColor"][i : i + 2], 16) for i in (1, 3, 5))
    assert r > g > b, "buildings are grey-brown"
    r, g, b = (int(style["key_areas"]["color"][i : i + 2], 16) for i in (1, 3, 5))
    assert r > g > b and r > 200, "key areas are orange"
    assert CATALOG["grids"].color_by == "households" and len(CATALOG["grids"].ramp) >= 3
    assert CATALOG["events"].color_by == "status"
    assert set(CATALOG["events"].palette) == set(EVENT_STATUSES) == set(EVENT_STATUS_COLORS)
    assert len(set(EVENT_STATUS_COLORS.values())) == len(EVENT_STATUS_COLORS)


def test_normalize_lang() -> None:
    assert [normalize_lang(x) for x in ("zh-CN", "zh", "zh_cn", "zh-Hans", "ZH-cn")] == ["zh"] * 5
    assert [normalize_lang(x) for x in ("en", "en-US", "EN_gb")] == ["en"] * 3
    assert [normalize_lang(x) for x in ("zh-en", "bilingual")] == ["zh-en"] * 2
    with pytest.raises(BadInput, match="unknown language") as info:
        normalize_lang("fr")
    assert info.value.field == "lang"


def test_labels() -> None:
    assert label("reported", "zh-CN") == "上报"
    assert label("reported", "en") == "Reported"
    assert label("reported") == "上报 Reported"
    assert label("safety_hazard", "zh-en") == "安全隐患 Safety hazards"
    assert label("town", "en", vocabulary="admin_levels") == "Town / street"
    assert label("key_place", "zh") == "重点场所"
    assert label("grid_worker", "zh") == "网格员"
    assert label("noise", "zh") == "noise"
    with pytest.raises(BadInput):
        label("closed", "de")
    with pytest.raises(BadInput):
        label("noise", "de")
    with pytest.raises(BadInput, match="unknown vocabulary"):
        label("closed", vocabulary="colours")


def test_codes_are_unique_across_vocabularies() -> None:
    # label() without a vocabulary is unambiguous only if no code is in two of them.
    seen: dict[str, str] = {}
    for vocabulary, names in VOCABULARIES.items():
        for code in names:
            assert code not in seen, f"{code!r} in {seen.get(code)} and {vocabulary}"
            seen[code] = vocabulary


def test_bilingual() -> None:
    assert bilingual("网格", "Grids") == "网格 Grids"
    assert bilingual("网格", "Grids", "zh-CN") == "网格"
    assert bilingual("网格", "", "en") == "网格"
    assert bilingual("", "Grids", "zh") == "Grids"
    assert bilingual("ID", "ID") == "ID"


def test_field_titles() -> None:
    grids = CATALOG["grids"]
    assert grids.field("households").title() == "户数 Households"
    assert grids.field("households").title("en") == "Households"
    assert grids.title("zh-CN") == "网格"
    with pytest.raises(KeyError):
        grids.field("nope")


def test_stored_h3_cells_are_never_published() -> None:
    """The events' H3 index columns stay internal (64-bit ints, not properties)."""
    from layers.catalog import CATALOG

    events = CATALOG["events"]
    for role in ("city_admin", "grid_worker", "external_system"):
        names = {f.name for f in events.fields_for(role)}
        assert "category" in names or not events.is_visible_to(role)
        assert not {n for n in names if n.startswith("h3_")}
        assert not {n for n in events.queryables_for(role) if n.startswith("h3_")}
