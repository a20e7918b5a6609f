"""OGC API Features documents: landing page, conformance, collections, queryables.

Plain functions from (catalog entry, store facts, base URL) to JSON-ready
dicts, so routers stay thin and the documents can be tested without a server.
What is published, with which titles and fields, and to whom, comes from the
layer catalog (:mod:`layers.catalog`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
import pandas as pd
from starlette.datastructures import URL

from api.crs import SUPPORTED_CRS
from api.geojson import json_value
from api.params import CRS84
from gridmap.common.errors import NotFound, UnknownLayer
from gridmap.storage import BBox
from layers.catalog import CATALOG, LayerDef

__all__ = [
    "CONFORMANCE",
    "GEOJSON",
    "HTML",
    "JSON",
    "OPENAPI_MEDIA_TYPE",
    "QUERYABLES_REL",
    "collection",
    "collection_document",
    "collections",
    "collections_document",
    "conformance_document",
    "extent_feature",
    "html_page",
    "landing_document",
    "link_header",
    "properties",
    "queryables_document",
    "time_extent",
    "wants_html",
    "with_format",
]

GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"
_REL = "http://www.opengis.net/def/rel/ogc/1.0/"
QUERYABLES_REL = _REL + "queryables"
#: Media types a JSON document answers (``*/*`` alone also gets JSON: it is the default).
_JSON_TYPES = frozenset({JSON, GEOJSON, "application/schema+json", "application/*"})

CONFORMANCE: tuple[str, ...] = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
)

_GEOMETRY_FORMATS = {
    "Polygon": "geometry-multipolygon",
    "LineString": "geometry-multilinestring",
    "Point": "geometry-point",
    "Geometry": "geometry-any",
}


def _link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    return link


def collections(role: str) -> list[LayerDef]:
    """The layers published as OGC API collections to *role*: spatial layers it may see.

    Examples
    --------
    >>> [c.name for c in collections("viewer")][:3]
    ['roads', 'buildings', 'admin_units']
    """
    return [d for d in CATALOG.values() if d.is_spatial and d.is_visible_to(role)]


def collection(name: str, role: str) -> LayerDef:
    """The published collection *name*.

    Raises
    ------
    gridmap.common.errors.UnknownLayer
        If no spatial layer has that name (404).
    gridmap.common.errors.NotFound
        If *role* may not see the layer (404).

    Examples
    --------
    >>> collection("grids", "viewer").title_en
    'Grids'
    """
    ldef = CATALOG.get(name)
    if ldef is None or not ldef.is_spatial:
        shown = name if len(name) <= 60 else name[:60] + "…"
        raise UnknownLayer(shown, [c.name for c in collections(role)])
    if not ldef.is_visible_to(role):
        raise NotFound(f"layer {name!r} is not visible to role {role!r}")
    return ldef


def properties(ldef: LayerDef, role: str) -> list[str]:
    """Feature properties *role* may see (personal fields only for staff roles).

    Examples
    --------
    >>> "workers" in properties(collection("grids", "viewer"), "viewer")
    False
    """
    return [f.name for f in ldef.fields_for(role)]


def landing_document(base: str) -> dict[str, Any]:
    """The landing page (``/``)."""
    return {
        "title": "gridmap 网格化服务管理 Grid-based community governance",
        "description": (
            "OGC API Features over the gridmap layers: admin units, grids, buildings, "
            "roads, key areas, events and patrol routes (WGS84 / CRS84)."
        ),
        "links": [
            _link(f"{base}/", "self", JSON, "This document"),
            _link(f"{base}/?f=html", "alternate", HTML, "This document as HTML 网页"),
            _link(f"{base}/api", "service-desc", OPENAPI_MEDIA_TYPE, "The API definition"),
            _link(f"{base}/docs", "service-doc", "text/html", "The API documentation"),
            _link(f"{base}/conformance", "conformance", JSON, "Conformance classes"),
            _link(f"{base}/conformance", _REL + "conformance", JSON, "Conformance classes"),
            _link(f"{base}/collections", "data", JSON, "The feature collections"),
            _link(f"{base}/collections", _REL + "data", JSON, "The feature collections"),
        ],
    }


def conformance_document() -> dict[str, Any]:
    """The conformance declaration (``/conformance``)."""
    return {"conformsTo": list(CONFORMANCE)}


def _extent(bounds: BBox | None, times: tuple[Any, Any] | None) -> dict[str, Any] | None:
    extent: dict[str, Any] = {}
    if bounds is not None:
        extent["spatial"] = {"bbox": [list(bounds)], "crs": CRS84}
    if times is not None:
        interval = [json_value(times[0]), json_value(times[1])]
        extent["temporal"] = {"interval": [interval], "trs": GREGORIAN}
    return extent or None


def collection_document(
    ldef: LayerDef,
    base: str,
    *,
    bounds: BBox | None,
    times: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """The description of one collection (``/collections/{layer}``).

    *bounds* is the layer's extent (``None`` when empty); *times* the first and
    last time of its features (``None`` without a time column; a ``None`` end
    means still open).
    """
    url = f"{base}/collections/{ldef.name}"
    doc: dict[str, Any] = {
        "id": ldef.name,
        "title": ldef.title(),
        "description": f"{ldef.title_en} ({ldef.title_zh})",
        "itemType": "feature",
        "crs": list(SUPPORTED_CRS),
        "storageCrs": CRS84,
        "links": [
            _link(url, "self", JSON, "This collection"),
            _link(f"{url}?f=html", "alternate", HTML, "This collection as HTML 网页"),
            _link(f"{url}/items", "items", GEOJSON, "Features as GeoJSON"),
            _link(f"{url}/items?f=html", "items", HTML, "Features as HTML 网页"),
            _link(f"{url}/queryables", QUERYABLES_REL, "application/schema+json", "Queryables"),
            _link(f"{url}/tiles", _REL + "tilesets-vector", JSON, "Vector tilesets"),
            _link(f"{base}/collections", "parent", JSON, "All collections"),
        ],
    }
    extent = _extent(bounds, times)
    if extent is not None:
        doc["extent"] = extent
    return doc


def extent_feature(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The spatial extent of a collection document as a GeoJSON Feature (for its map).

    Examples
    --------
    >>> extent_feature({"extent": {"spatial": {"bbox": [[1, 2, 3, 4]]}}})["geometry"]["type"]
    'Polygon'
    >>> extent_feature({}) is None
    True
    """
    bbox = doc.get("extent", {}).get("spatial", {}).get("bbox")
    if not bbox:
        return None
    x0, y0, x1, y1 = bbox[0][:4]
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}}


def collections_document(base: str, described: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The collection list (``/collections``) from already built collection documents."""
    return {
        "links": [
            _link(f"{base}/collections", "self", JSON, "This document"),
            _link(f"{base}/collections?f=html", "alternate", HTML, "This document as HTML 网页"),
        ],
        "collections": list(described),
    }


def queryables_document(ldef: LayerDef, base: str, role: str | None = None) -> dict[str, Any]:
    """A JSON Schema (2020-12) of the layer's queryable properties (``/queryables``).

    Properties come from the catalog (personal fields are never queryable); each
    has a bilingual ``title`` ("中文 English").
    """
    props: dict[str, Any] = {
        "geometry": {
            "title": "几何 Geometry",
            "format": _GEOMETRY_FORMATS.get(ldef.geometry_type or "", "geometry-any"),
            "x-ogc-role": "primary-geometry",
        },
    }
    for name, schema in ldef.queryables_for(role).items():
        entry = dict(schema)
        zh = entry.pop("x-title-zh", "")
        entry["title"] = f"{zh} {entry.get('title', name)}".strip()
        if name == "id":
            entry["x-ogc-role"] = "id"
        elif name == ldef.time_column:
            entry["x-ogc-role"] = "primary-instant"
        props[name] = entry
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base}/collections/{ldef.name}/queryables",
        "type": "object",
        "title": ldef.title(),
        "properties": props,
        "additionalProperties": False,
    }


def time_extent(values: pd.Series) -> tuple[Any, Any] | None:
    """First and last value of a time column (``None`` when all are missing)."""
    present = values.dropna()
    if present.empty:
        return None
    return present.min(), present.max()


def _quality(param: str) -> float:
    name, _, value = param.partition("=")
    if name.strip().lower() != "q":
        return -1.0
    try:
        q = float(value.strip())
    except ValueError:
        return 0.0
    return min(max(q, 0.0), 1.0) if q == q else 0.0


def wants_html(f: str | None, accept: str | None) -> bool:
    """Whether a request asks for the HTML view: ``f=html``, or a browser's ``Accept``.

    An explicit ``f`` decides. Otherwise HTML is served only when ``text/html``
    is preferred (higher ``q``) to every JSON type the client lists; ``*/*``
    alone, no header, or a tie keeps the JSON default.

    Examples
    --------
    >>> wants_html(None, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
    True
    >>> wants_html(None, "application/geo+json, application/json;q=0.9, text/html;q=0.5")
    False
    >>> wants_html(None, "*/*"), wants_html("html", None), wants_html("json", "text/html")
    (False, True, False)
    """
    if f is not None:
        return f == "html"
    if not accept:
        return False
    html_q, json_q = 0.0, 0.0
    for item in accept.split(",")[:50]:
        media, *params = item.split(";")
        media = media.strip().lower()
        q = 1.0
        for param in params:
            value = _quality(param)
            q = value if value >= 0 else q
        if media == HTML:
            html_q = max(html_q, q)
        elif media in _JSON_TYPES:
            json_q = max(json_q, q)
    return html_q > json_q


_LINK_UNSAFE = re.compile(r'[\s,;<>"]')


def link_header(links: Sequence[Mapping[str, str]]) -> str:
    """An RFC 8288 ``Link`` header value of *links* (``href``, ``rel``, ``type``, ``title``).

    Commas, semicolons and angle brackets in targets are percent-encoded, so
    clients that split the header on ``,`` and ``;`` read it right. A relation
    type is written bare when it holds none of those characters, as RFC 5988
    wrote extension (URI) relation types and RFC 8288's parsing algorithm
    (appendix B.3) reads them; titles are left out (they may hold any text).

    Examples
    --------
    >>> link_header([{"href": "http://h/x?bbox=1,2", "rel": "self", "type": "application/json"}])
    '<http://h/x?bbox=1%2C2>; rel=self; type="application/json"'
    """
    parts = []
    for link in links:
        href = link["href"]
        for char, code in ((",", "%2C"), (";", "%3B"), ("<", "%3C"), (">", "%3E"), (" ", "%20")):
            href = href.replace(char, code)
        rel = link["rel"]
        rel = rel if not _LINK_UNSAFE.search(rel) else '"' + rel.replace('"', "") + '"'
        part = f"<{href}>; rel={rel}"
        if link.get("type"):
            part += f'; type="{link["type"].replace(chr(34), "")}"'
        parts.append(part)
    return ", ".join(parts)


def with_format(href: str, f: str) -> str:
    """*href* with its ``f`` query parameter set to *f* (other parameters kept).

    Examples
    --------
    >>> with_format("http://h/collections/roads/items?limit=5&f=json", "html")
    'http://h/collections/roads/items?limit=5&f=html'
    """
    return str(URL(href).include_query_params(f=f))


_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("api", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _cell(value: Any) -> str:
    """A property value as table text (lists and objects as compact JSON, null as empty)."""
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


_TEMPLATES.filters["cell"] = _cell


def html_page(template: str, **context: Any) -> str:
    """Render one of the HTML views in ``api/templates`` (autoescaped).

    Examples
    --------
    >>> page = html_page("landing.html", doc=landing_document("http://h"), base="http://h",
    ...                  json_href="http://h/?f=json")
    >>> "网格化服务管理" in page and "<script" not in page
    True
    """
    return _TEMPLATES.get_template(template).render(**context)
