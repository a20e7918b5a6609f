"""The API definition as OpenAPI 3.0 (what OGC API Features' ``oas30`` class asks for).

FastAPI writes OpenAPI 3.1, whose schemas are JSON Schema 2020-12. Clients
built for 3.0 (GDAL, the OGC test suite) read ``nullable`` instead of a
``null`` type, ``example`` instead of ``examples``, and boolean
``exclusiveMinimum``. :func:`downgrade` rewrites the few 3.1 constructs
FastAPI emits.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from api.settings import Settings

__all__ = ["OPENAPI_VERSION", "api_document", "downgrade"]

OPENAPI_VERSION = "3.0.3"

_NULL = {"type": "null"}
#: Keywords whose value maps names to schemas (names are not keywords).
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
#: Keywords whose value is data, not a schema.
_LITERALS = frozenset({"default", "example", "examples", "enum", "const"})


def _schema(node: Any) -> Any:
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
    kind = out.get("type")
    if isinstance(kind, list):
        types = [t for t in kind if t != "null"]
        if len(types) < len(kind):
            out["nullable"] = True
        if len(types) == 1:
            out["type"] = types[0]
        else:
            del out["type"]
            out["anyOf"] = [{"type": t} for t in types]
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
    return out


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


def api_document(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.0 document of *app*, with the configured page sizes on ``limit``.

    Clients such as GDAL read ``limit``'s ``maximum`` and ``default`` to choose
    their page size.
    """
    doc = downgrade(app.openapi())
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            for param in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if param.get("in") == "query" and param.get("name") == "limit":
                    param["schema"] = {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": settings.max_limit,
                        "default": settings.default_limit,
                    }
    return doc
