"""The API definition as OpenAPI 3.0 (what OGC API Features' ``oas30`` class asks for).

FastAPI writes OpenAPI 3.1, whose schemas are JSON Schema 2020-12. Clients
built for 3.0 (GDAL, the OGC test suite) read ``nullable`` instead of a
``null`` type, ``example`` instead of ``examples``, and boolean
``exclusiveMinimum``. :func:`downgrade` rewrites the few 3.1 constructs
FastAPI emits.

:func:`api_document` then says what FastAPI cannot infer from the handlers:
``bbox`` is four numbers (an array, ``style: form``, ``explode: false``, as
OGC API Features declares it, though the handlers take the text), ``layer``
is one of the published collections, and each collection has its own items
path listing its queryables as query parameters (OGC API Features Part 3),
which clients such as GDAL look for to send attribute filters to the server.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from api.items import queryable_params
from layers.catalog import CATALOG, LayerDef

if TYPE_CHECKING:
    from fastapi import FastAPI

    from api.settings import Settings

__all__ = ["OPENAPI_VERSION", "api_document", "downgrade", "published_layers"]

OPENAPI_VERSION = "3.0.3"

_NULL = {"type": "null"}
#: Keywords whose value maps names to schemas (names are not keywords).
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
#: Keywords whose value is data, not a schema.
_LITERALS = frozenset({"default", "example", "examples", "enum", "const"})


def _schema(node: Any) -> Any:
    """Rewrite one JSON Schema 2020-12 *node* (and what it nests) as OpenAPI 3.0."""
    if isinstance(node, list):
        return [_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _schema(s) for name, s in value.items()}
        elif key in _LITERALS:
            out[key] = value
        else:
            out[key] = _schema(value)
    out = _null_options(out)
    _type_list(out)
    _keywords_30(out)
    return out


def _null_options(out: dict[str, Any]) -> dict[str, Any]:
    """``anyOf``/``oneOf`` with a ``null`` option → the other options and ``nullable``."""
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if isinstance(options, list) and _NULL in options:
            rest = [o for o in options if o != _NULL]
            del out[key]
            if len(rest) == 1 and "$ref" not in rest[0]:
                out = {**rest[0], **out}
            elif rest:
                out[key] = rest
            out["nullable"] = True
    return out


def _type_list(out: dict[str, Any]) -> None:
    """A list of types → one type or ``anyOf``, ``null`` → ``nullable`` (in place)."""
    kind = out.get("type")
    if not isinstance(kind, list):
        return
    types = [t for t in kind if t != "null"]
    if len(types) < len(kind):
        out["nullable"] = True
    if len(types) == 1:
        out["type"] = types[0]
    else:
        del out["type"]
        out["anyOf"] = [{"type": t} for t in types]


def _keywords_30(out: dict[str, Any]) -> None:
    """Rewrite 3.1-only keywords in place (``const``, ``examples``, exclusive bounds,
    ``$ref`` siblings) and drop those 3.0 lacks.
    """
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "examples" in out and isinstance(out["examples"], list):
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = out.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[plain] = value
            out[bound] = True
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}]
    for key in ("contentMediaType", "contentEncoding", "$schema", "$id", "prefixItems"):
        out.pop(key, None)


def _walk(node: Any) -> Any:
    """Rewrite every ``schema`` object found in a path or component tree."""
    if isinstance(node, list):
        return [_walk(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "schema":
            out[key] = _schema(value)
        elif key == "schemas" and isinstance(value, dict):
            out[key] = {name: _schema(s) for name, s in value.items()}
        else:
            out[key] = _walk(value)
    return out


def downgrade(document: dict[str, Any]) -> dict[str, Any]:
    """Return an OpenAPI 3.0 copy of FastAPI's 3.1 *document*.

    Examples
    --------
    >>> doc = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {
    ...     "/a": {"get": {"parameters": [{"name": "x", "in": "query",
    ...         "schema": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}]}}}}
    >>> downgrade(doc)["paths"]["/a"]["get"]["parameters"][0]["schema"]
    {'type': 'integer', 'nullable': True}
    """
    doc = copy.deepcopy(document)
    doc["openapi"] = OPENAPI_VERSION
    doc.pop("webhooks", None)
    doc.pop("jsonSchemaDialect", None)
    info = doc.get("info", {})
    info.pop("summary", None)
    if isinstance(info.get("license"), dict):
        info["license"].pop("identifier", None)
    if "paths" in doc:
        doc["paths"] = _walk(doc["paths"])
    if "components" in doc:
        doc["components"] = _walk(doc["components"])
    return doc


#: ``style`` and ``explode`` of OGC API Features' query parameters (the OpenAPI
#: defaults, but its conformance tests look for them written out).
_FORM = {"style": "form", "explode": False}


def published_layers() -> list[LayerDef]:
    """The layers published as collections to some role (spatial, visible to someone).

    Which of them a caller sees depends on its role (others answer 404).

    Examples
    --------
    >>> [d.name for d in published_layers()][:2]
    ['roads', 'buildings']
    >>> "patrol_tracks" in [d.name for d in published_layers()]
    False
    """
    return [d for d in CATALOG.values() if d.is_spatial and d.visible_to]


def _bbox(param: dict[str, Any]) -> dict[str, Any]:
    """``bbox`` as OGC API Features declares it: 4 (or 6) numbers, comma-separated.

    Examples
    --------
    >>> p = _bbox({"name": "bbox", "in": "query", "schema": {"type": "string",
    ...     "example": "1,2,3,4"}})
    >>> p["style"], p["explode"], p["schema"]["items"], p["schema"]["example"]
    ('form', False, {'type': 'number'}, [1.0, 2.0, 3.0, 4.0])
    >>> p["schema"]["minItems"], p["schema"]["maxItems"]
    (4, 6)
    """
    schema = param.get("schema", {})
    out = {k: v for k, v in param.items() if k != "schema"}
    # OGC API Features' own fragment (/req/core/fc-bbox-definition) says 4 to 6
    # numbers; 6 (a height range) are answered 400, since the layers are 2D.
    array: dict[str, Any] = {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 4,
        "maxItems": 6,
    }
    if "description" in schema:
        array["description"] = schema["description"] + " Four numbers: six (3D) are refused."
    example = schema.get("example")
    if isinstance(example, str):
        array["example"] = [float(v) for v in example.split(",")]
    return {**out, **_FORM, "schema": array}


def _queryable(ldef: LayerDef, name: str) -> dict[str, Any]:
    """The query parameter of queryable *name* (equality; OGC API Features Part 3)."""
    spec = ldef.queryables[name]
    schema = {k: spec[k] for k in ("type", "format", "enum") if k in spec}
    title = spec.get("title", name)
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"Only features whose `{name}` ({title}) equals this value.",
        "schema": schema,
    }


def _collection_items(doc: dict[str, Any]) -> None:
    """Add ``/collections/<name>/items`` for every published layer, with its queryables.

    The templated ``/collections/{layer}/items`` stays (a concrete path wins
    over a template when both match).
    """
    template = doc.get("paths", {}).get("/collections/{layer}/items", {}).get("get")
    if template is None:
        return
    paths: dict[str, Any] = {}
    for path, operations in doc["paths"].items():
        paths[path] = operations
        if path != "/collections/{layer}/items":
            continue
        for ldef in published_layers():
            op = copy.deepcopy(template)
            params = [p for p in op.get("parameters", []) if p.get("in") != "path"]
            taken = {p["name"] for p in params}
            params += [_queryable(ldef, n) for n in queryable_params(ldef) if n not in taken]
            op["parameters"] = params
            op["summary"] = f"Features of {ldef.title_en} {ldef.title_zh} (GeoJSON)"
            op["operationId"] = f"{template.get('operationId', 'items')}_{ldef.name}"
            paths[f"/collections/{ldef.name}/items"] = {"get": op}
    doc["paths"] = paths


def api_document(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.0 document of *app*, completed for OGC API clients.

    Clients such as GDAL read ``limit``'s ``maximum`` and ``default`` to choose
    their page size; ``bbox`` is declared as 4 numbers, ``layer`` as one of
    the published collections, and every collection gets its items path with
    its queryables as parameters.
    """
    doc = downgrade(app.openapi())
    layers = [d.name for d in published_layers()]
    for path, operations in doc.get("paths", {}).items():
        for operation in operations.values():
            params = operation.get("parameters", []) if isinstance(operation, dict) else []
            for i, param in enumerate(params):
                where, name = param.get("in"), param.get("name")
                if where == "query" and name == "limit":
                    param["schema"] = {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": settings.max_limit,
                        "default": settings.default_limit,
                    }
                    param.update(_FORM)
                elif where == "query" and name == "datetime":
                    param.update(_FORM)  # as OGC API Features defines both
                elif where == "query" and name == "bbox":
                    params[i] = _bbox(param)
                elif where == "path" and name == "layer" and path.startswith("/collections/"):
                    param["schema"] = {**param.get("schema", {}), "enum": layers}
    _collection_items(doc)
    return doc
