r"""CQL2 filters (OGC API Features Part 3) → parameterized SQL for PostGIS and DuckDB.

:func:`parse_filter` reads CQL2 text or JSON with the ``cql2`` library, checks
every property against a whitelist (the layer's queryables) and every literal
against the property's type, and keeps the normalized CQL2-JSON tree.
:func:`filter_sql` walks that tree into a WHERE fragment: identifiers come only
from the layer schema, every value is a bound parameter, never pasted text.

Supported: ``AND``/``OR``/``NOT``; ``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``
(property against literal); ``LIKE`` (``%``, ``_``, ``\\`` escape); ``IN``;
``BETWEEN``; ``IS NULL``; ``S_INTERSECTS``, ``S_WITHIN``, ``S_CONTAINS``,
``S_DISJOINT``, ``S_EQUALS``, ``S_TOUCHES``, ``S_CROSSES``, ``S_OVERLAPS`` on
``geometry`` with WKT/GeoJSON/BBOX literals (WGS84); ``T_AFTER``, ``T_BEFORE``,
``T_DURING``, ``T_EQUALS`` on timestamp and date properties.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import cql2
import numpy as np
import shapely
import shapely.geometry

from gridmap.common.errors import BadInput
from gridmap.common.model import LayerSchema
from gridmap.common.timeparse import parse_day, parse_instant
from gridmap.storage._sql import quote

__all__ = [
    "FILTER_LANGS",
    "MAX_DEPTH",
    "MAX_LIKE_LENGTH",
    "MAX_LIKE_WILDCARDS",
    "CqlFilter",
    "filter_sql",
    "like_pattern",
    "parse_filter",
]

#: The ``filter-lang`` values accepted.
FILTER_LANGS = ("cql2-text", "cql2-json")
#: Deepest nesting of parentheses (text) or brackets (JSON) accepted.
MAX_DEPTH = 40
#: Longest filter accepted (characters).
MAX_LENGTH = 50_000
#: Most vertices of a geometry literal.
MAX_VERTICES = 10_000
#: Longest ``LIKE`` pattern (characters) and most wildcards in one (see :func:`like_pattern`).
MAX_LIKE_LENGTH, MAX_LIKE_WILDCARDS = 200, 16

_CMP = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_FLIP = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_SPATIAL = {
    "s_intersects": "ST_Intersects",
    "s_within": "ST_Within",
    "s_contains": "ST_Contains",
    "s_disjoint": "ST_Disjoint",
    "s_equals": "ST_Equals",
    "s_touches": "ST_Touches",
    "s_crosses": "ST_Crosses",
    "s_overlaps": "ST_Overlaps",
}
_TEMPORAL = ("t_after", "t_before", "t_during", "t_equals")
_SCALAR_TYPES = ("text", "int", "float", "bool", "timestamp", "date")

Dialect = Literal["postgis", "duckdb"]


@dataclass(frozen=True)
class CqlFilter:
    """A checked CQL2 filter: its normalized CQL2-JSON tree and the properties it uses.

    Examples
    --------
    >>> f = parse_filter("floors > 3", properties={"floors": "int"})
    >>> f.tree
    {'op': '>', 'args': [{'property': 'floors'}, 3.0]}
    """

    tree: dict[str, Any]
    properties: frozenset[str]


def _depth(text: str, opening: str, closing: str, quote_char: str, escape: str | None) -> int:
    """Deepest bracket nesting of *text* outside string literals."""
    depth = deepest = 0
    in_string = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if in_string:
            if escape is not None and ch == escape:
                i += 2
                continue
            if ch == quote_char:
                in_string = False
        elif ch == quote_char:
            in_string = True
        elif ch in opening:
            depth += 1
            deepest = max(deepest, depth)
        elif ch in closing:
            depth -= 1
        i += 1
    return deepest


def _tree_depth(tree: Any) -> int:
    """Depth of a JSON tree, without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)
    return deepest


def _first_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:200]


def parse_filter(
    text: str,
    lang: str | None = None,
    *,
    properties: Mapping[str, str],
) -> CqlFilter:
    """Parse and check a CQL2 filter.

    Parameters
    ----------
    text : str
        The filter, CQL2 text or JSON.
    lang : {"cql2-text", "cql2-json"}, optional
        Default ``cql2-text``.
    properties : mapping
        Queryable property → column type (``"text"``, ``"int"``, …); the
        geometry is ``"geometry"``. Anything else is an unknown property.

    Raises
    ------
    gridmap.common.errors.BadInput
        (field ``filter``) for syntax errors, unknown properties, type
        mismatches, unsupported operators, too deep nesting or a filter too
        long; (field ``filter-lang``) for an unknown language.

    Examples
    --------
    >>> parse_filter("name = 'it''s'", properties={"name": "text"}).tree["args"][1]
    "it's"
    >>> parse_filter("nope = 1", properties={"name": "text"})
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: filter: unknown property 'nope'; queryables: name
    """
    lang = lang or "cql2-text"
    if lang not in FILTER_LANGS:
        raise BadInput(
            f"filter-lang {lang[:40]!r} is not supported; use {' or '.join(FILTER_LANGS)}",
            field="filter-lang",
        )
    if not text.strip():
        raise BadInput("filter is empty", field="filter")
    if len(text) > MAX_LENGTH:
        raise BadInput(f"filter is longer than {MAX_LENGTH} characters", field="filter")
    if lang == "cql2-text":
        # Prefix NOTs nest like parentheses (and overflow the parser's stack).
        nots = len(re.findall(r"\bnot\b", text, flags=re.IGNORECASE))
        if _depth(text, "(", ")", "'", None) + nots > MAX_DEPTH:
            raise BadInput(f"filter nests deeper than {MAX_DEPTH} levels", field="filter")
        try:
            tree = cql2.parse_text(text).to_json()
        except Exception as exc:  # cql2 raises ParseError/ValueError subclasses
            raise BadInput(f"filter syntax error: {_first_line(exc)}", field="filter") from None
    else:
        if _depth(text, "[{", "]}", '"', "\\") > 2 * MAX_DEPTH:
            raise BadInput(f"filter nests deeper than {MAX_DEPTH} levels", field="filter")
        try:
            json.loads(text)
            tree = cql2.parse_json(text).to_json()
        except Exception as exc:
            raise BadInput(
                f"filter is not valid CQL2 JSON: {_first_line(exc)}", field="filter"
            ) from None
    if not isinstance(tree, dict):
        raise BadInput("filter must be a boolean expression", field="filter")
    if _tree_depth(tree) > 4 * MAX_DEPTH:
        raise BadInput(f"filter nests deeper than {MAX_DEPTH} levels", field="filter")
    used: set[str] = set()
    _check(tree, properties, used)
    return CqlFilter(tree, frozenset(used))


def like_pattern(pattern: str) -> str:
    r"""A ``LIKE`` pattern bounded in size and rewritten so that matching stays cheap.

    At most :data:`MAX_LIKE_LENGTH` characters and :data:`MAX_LIKE_WILDCARDS`
    wildcards (``%``, ``_``; ``\`` escapes one), so no pattern can make a
    store backtrack for minutes (DuckDB takes exponential time on
    ``'%_%_%_…'``). Each run of wildcards holding a ``%`` is rewritten to
    its ``_`` followed by one ``%``, which matches exactly the same strings.

    Examples
    --------
    >>> like_pattern("%_%_a%%b")
    '__%a%b'
    >>> like_pattern("100\\%")
    '100\\%'
    >>> like_pattern("%_" * 40)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    gridmap.common.errors.BadInput: filter: the LIKE pattern has 80 wildcards ...
    """
    if len(pattern) > MAX_LIKE_LENGTH:
        raise _bad(
            f"the LIKE pattern has {len(pattern)} characters; at most {MAX_LIKE_LENGTH} are allowed"
        )
    out: list[str] = []
    wildcards = underscores = 0
    percent = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch in "%_":
            wildcards += 1
            percent, underscores = percent or ch == "%", underscores + (ch == "_")
            i += 1
            continue
        out.append("_" * underscores + ("%" if percent else ""))
        percent, underscores = False, 0
        if ch == "\\":
            if i + 1 == len(pattern):
                raise _bad("the LIKE pattern ends with the escape character \\")
            out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append(ch)
        i += 1
    out.append("_" * underscores + ("%" if percent else ""))
    if wildcards > MAX_LIKE_WILDCARDS:
        raise _bad(
            f"the LIKE pattern has {wildcards} wildcards (% and _); at most "
            f"{MAX_LIKE_WILDCARDS} are allowed"
        )
    return "".join(out)


def _bad(message: str) -> BadInput:
    return BadInput(f"filter: {message}", field="filter")


def _prop(node: Any, properties: Mapping[str, str], used: set[str]) -> str | None:
    if isinstance(node, dict) and set(node) == {"property"}:
        name = node["property"]
        if not isinstance(name, str) or name not in properties:
            shown = str(name)[:60]
            raise _bad(f"unknown property {shown!r}; queryables: {', '.join(sorted(properties))}")
        used.add(name)
        return name
    return None


def _check(node: Any, properties: Mapping[str, str], used: set[str]) -> None:
    if isinstance(node, bool):
        return
    if not isinstance(node, dict) or "op" not in node:
        raise _bad("expected a boolean expression")
    op = str(node["op"]).lower()
    args = node.get("args", [])
    if op in ("and", "or"):
        for a in args:
            _check(a, properties, used)
        return
    if op == "not":
        _check(args[0], properties, used)
        return
    names = [_prop(a, properties, used) for a in args]
    if sum(n is not None for n in names) != 1:
        raise _bad(f"{op.upper()} needs exactly one property and literal values")
    # Literal conversion checks the types; the result is discarded here.
    _convert(op, args, properties)


def _convert(op: str, args: list[Any], properties: Mapping[str, str]) -> tuple[str, str, list[Any]]:
    """(property, SQL operator kind, converted literal values) of a predicate."""
    name, lits, op = _property_first(op, args)
    ctype = properties[name]
    if op in _SPATIAL:
        if ctype != "geometry":
            raise _bad(f"{op.upper()} needs the geometry property, not {name!r}")
        return name, op, [_geometry(lits[0])]
    if ctype == "geometry":
        raise _bad(f"the geometry can only be used in spatial predicates, not {op.upper()}")
    if ctype not in _SCALAR_TYPES:
        raise _bad(f"property {name!r} (a list) cannot be filtered")
    if op == "isnull":
        return name, op, []
    if op == "like":
        if ctype != "text" or len(lits) != 1 or not isinstance(lits[0], str):
            raise _bad(f"LIKE needs a text property and a text pattern ({name!r} is {ctype})")
        return name, op, [like_pattern(lits[0])]
    if op in _TEMPORAL:
        return name, op, _temporal_literals(op, lits, ctype=ctype, name=name)
    return name, op, _scalar_literals(op, lits, ctype=ctype, name=name)


def _property_first(op: str, args: list[Any]) -> tuple[str, list[Any], str]:
    """(property, literals, operator) with the property first (``5 < x`` is ``x > 5``)."""
    if isinstance(args[0], dict) and "property" in args[0]:
        return args[0]["property"], args[1:], op
    if op not in _CMP or len(args) != 2:
        raise _bad(f"{op.upper()} needs the property first")
    return args[1]["property"], args[:1], _FLIP[op]


def _temporal_literals(op: str, lits: list[Any], *, ctype: str, name: str) -> list[Any]:
    """The instants of a temporal predicate (``None`` for an open interval end)."""
    if ctype not in ("timestamp", "date"):
        raise _bad(f"{op.upper()} needs a timestamp or date property, not {name!r}")
    if op == "t_during":
        iv = lits[0].get("interval") if isinstance(lits[0], dict) else None
        if not isinstance(iv, list) or len(iv) != 2:
            raise _bad("T_DURING needs an INTERVAL")
        return [None if v == ".." else _instant(_tagged(v)) for v in iv]
    return [_instant(lits[0])]


def _scalar_literals(op: str, lits: list[Any], *, ctype: str, name: str) -> list[Any]:
    """The values of an IN, BETWEEN or comparison predicate, checked against *ctype*."""
    if op == "in":
        if len(lits) != 1 or not isinstance(lits[0], list) or not lits[0]:
            raise _bad("IN needs a non-empty list")
        return [_scalar(v, ctype, name) for v in lits[0]]
    if op == "between":
        if len(lits) != 2:
            raise _bad("BETWEEN needs two bounds")
        return [_scalar(v, ctype, name) for v in lits]
    if op in _CMP:
        if len(lits) != 1:
            raise _bad(f"{op} needs one value")
        return [_scalar(lits[0], ctype, name)]
    raise _bad(f"operator {op.upper()[:30]!r} is not supported")


def _tagged(value: Any) -> Any:
    """Interval bounds come as bare strings: tag them as timestamp or date."""
    if isinstance(value, str):
        return {"timestamp" if "T" in value.upper() else "date": value}
    return value


def _instant(value: Any) -> datetime | date:
    if isinstance(value, dict) and len(value) == 1:
        ((kind, text),) = value.items()
        if kind in ("timestamp", "date") and isinstance(text, str):
            # The one time parser (gridmap.common.timeparse): ISO 8601, years 1 to 9999 (the
            # stores' and Python's), also after conversion to UTC.
            invalid = _bad(f"invalid {kind} {text[:40]!r} (years 0001 to 9999, ISO 8601)")
            if kind == "date":
                try:
                    return parse_day(text, field="filter")
                except BadInput:
                    raise invalid from None
            try:
                ts = parse_instant(text, field="filter", dates=False)
            except BadInput:
                try:  # read as UTC, would it be a time? then only its zone is missing
                    parse_instant(text, field="filter", tz="UTC")
                except BadInput:
                    raise invalid from None
                raise _bad(f"timestamp {text[:40]!r} needs a time zone (e.g. Z)") from None
            utc: datetime = ts.floor("us").to_pydatetime()
            return utc
    raise _bad("expected a TIMESTAMP('…') or DATE('…') literal")


def _scalar(value: Any, ctype: str, name: str) -> Any:
    if ctype == "text":
        if isinstance(value, str):
            return value
    elif ctype in ("int", "float"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not np.isfinite(value):
                raise _bad(f"{name!r} needs a finite number")
            if ctype == "int" and float(value).is_integer() and abs(value) < 2**63:
                return int(value)
            return float(value)
    elif ctype == "bool":
        if isinstance(value, bool):
            return value
    elif ctype in ("timestamp", "date"):
        return _instant(value)
    raise _bad(f"property {name!r} is {ctype}; {json.dumps(value)[:40]} does not fit")


def _geometry(value: Any) -> bytes:
    geom: shapely.Geometry
    try:
        if isinstance(value, dict) and "bbox" in value:
            box = [float(v) for v in value["bbox"]]
            if len(box) == 6:
                box = [box[0], box[1], box[3], box[4]]
            if len(box) != 4:
                raise ValueError("BBOX needs 4 numbers")
            geom = shapely.box(box[0], box[1], box[2], box[3])
        else:
            geom = shapely.geometry.shape(value)
    except (ValueError, TypeError, KeyError, AttributeError, shapely.errors.GEOSException):
        raise _bad("invalid geometry literal") from None
    coords = shapely.get_coordinates(geom)
    if len(coords) > MAX_VERTICES:
        raise _bad(f"geometry literal has more than {MAX_VERTICES} vertices")
    if geom.is_empty or not np.isfinite(coords).all():
        raise _bad("geometry literal is empty or has non-finite coordinates")
    if (np.abs(coords[:, 0]) > 180).any() or (np.abs(coords[:, 1]) > 90).any():
        raise _bad("geometry literal lies outside lon [-180, 180] / lat [-90, 90]")
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    return bytes(shapely.to_wkb(geom, output_dimension=2, byte_order=1))


def filter_sql(
    flt: CqlFilter,
    schema: LayerSchema,
    *,
    dialect: Dialect,
    alias: str = "",
) -> tuple[str, list[Any]]:
    """A parameterized SQL condition for *flt* on *schema*'s table.

    Placeholders are ``%s`` (PostGIS) or ``?`` (DuckDB); properties must be
    columns of the schema (or ``id``/``geometry``).

    Examples
    --------
    >>> from gridmap.common.model import layer_schema
    >>> f = parse_filter("floors BETWEEN 2 AND 5", properties={"floors": "int"})
    >>> filter_sql(f, layer_schema("buildings"), dialect="duckdb")
    ('("floors" BETWEEN ? AND ?)', [2, 5])
    """
    types: dict[str, str] = {c.name: c.type for c in schema.columns}
    types["id"] = "int"
    if schema.geometry_type:
        types["geometry"] = "geometry"
    for name in flt.properties:
        if name not in types:
            raise _bad(f"property {name!r} is not a column of {schema.name!r}")
    sql = _ConditionSQL(dialect=dialect, alias=alias, types=types)
    return sql.walk(flt.tree), sql.params


@dataclass
class _ConditionSQL:
    """Writes the SQL of a checked filter tree; *params* collects its values in order."""

    dialect: Dialect
    alias: str
    types: Mapping[str, str]
    params: list[Any] = field(default_factory=list)

    @property
    def ph(self) -> str:
        return "%s" if self.dialect == "postgis" else "?"

    def column(self, name: str) -> str:
        return f"{self.alias}.{quote(name)}" if self.alias else quote(name)

    def geometry(self, wkb: bytes) -> str:
        self.params.append(wkb)
        if self.dialect == "postgis":
            return f"ST_GeomFromWKB({self.ph}, 4326)"
        return f"ST_GeomFromWKB({self.ph})"

    def walk(self, node: Any) -> str:
        if isinstance(node, bool):
            return "TRUE" if node else "FALSE"
        op = str(node["op"]).lower()
        args = node.get("args", [])
        if op in ("and", "or"):
            return "(" + f" {op.upper()} ".join(self.walk(a) for a in args) + ")"
        if op == "not":
            return f"(NOT {self.walk(args[0])})"
        return self.predicate(op, args)

    def predicate(self, op: str, args: list[Any]) -> str:
        name, kind, values = _convert(op, args, self.types)
        c, ph = self.column(name), self.ph
        if kind in _SPATIAL:
            return f"{_SPATIAL[kind]}({c}, {self.geometry(values[0])})"
        if kind == "isnull":
            return f"({c} IS NULL)"
        if kind == "t_during":
            return self.during(c, values)
        self.params.extend(values)
        if kind == "like":
            return f"({c} LIKE {ph} ESCAPE '\\')"
        if kind == "in":
            return f"({c} IN ({', '.join([ph] * len(values))}))"
        if kind == "between":
            return f"({c} BETWEEN {ph} AND {ph})"
        sign = {"t_after": ">", "t_before": "<", "t_equals": "="}.get(kind) or _CMP[kind]
        return f"({c} {sign} {ph})"

    def during(self, c: str, values: list[Any]) -> str:
        parts = []
        for value, sign in zip(values, (">", "<"), strict=True):
            if value is not None:
                parts.append(f"{c} {sign} {self.ph}")
                self.params.append(value)
        return "(" + (" AND ".join(parts) or f"{c} IS NOT NULL") + ")"
