"""SQL helpers shared by both stores: migrations on disk and filter building.

Identifiers come only from the layer schema (never from users); values are
always bound as parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from gridmap.common.errors import BadInput
from gridmap.common.model import LayerSchema

__all__ = ["AllOf", "Cmp", "Migration", "Prefix", "migrations", "quote", "where_sql"]

_OPS = ("<", "<=", ">", ">=", "<>")


@dataclass(frozen=True)
class Cmp:
    """A comparison filter value: ``where={"reported_at": Cmp(">=", t0)}``.

    Examples
    --------
    >>> Cmp(">=", 3)
    Cmp(op='>=', value=3)
    """

    op: str
    value: Any


@dataclass(frozen=True)
class Prefix:
    """Codes starting with any of *prefixes* (area scoping by the code hierarchy).

    An empty prefix matches everything, NULL included; no prefixes match nothing.

    Examples
    --------
    >>> Prefix(("990100001",))
    Prefix(prefixes=('990100001',))
    """

    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class AllOf:
    """Several comparisons on one column, all true: ``AllOf((Cmp(">=", a), Cmp("<", b)))``."""

    items: tuple[Cmp, ...]


@dataclass(frozen=True)
class Migration:
    """One versioned schema step (``NNN_name.sql``)."""

    version: int
    name: str
    sql: str


def migrations(dialect: str) -> list[Migration]:
    """The migrations of *dialect* (``postgis`` or ``duckdb``) in version order."""
    folder = resources.files("gridmap.storage") / "sql" / dialect
    out = []
    for entry in folder.iterdir():
        m = re.fullmatch(r"(\d{3})_(\w+)\.sql", entry.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(out, key=lambda mig: mig.version)


def quote(name: str) -> str:
    """Quote an identifier taken from the schema."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise BadInput(f"invalid identifier {name!r}")
    return f'"{name}"'


def where_sql(
    schema: LayerSchema,
    where: Mapping[str, Any] | None,
    *,
    ids: Sequence[int] | None = None,
    bbox_sql: str | None = None,
    bbox: Sequence[float] | None = None,
    placeholder: str = "%s",
    alias: str = "",
) -> tuple[str, list[Any]]:
    """Build a parameterized WHERE clause from equality filters, ids and a bbox test.

    *bbox_sql* is the dialect's intersects test with four placeholders.
    Unknown columns raise ``BadInput`` naming the column. *alias* qualifies
    column names (``alias="t"`` → ``t."col"``).
    """
    parts: list[str] = []
    params: list[Any] = []
    for col, value in (where or {}).items():
        _check_filterable(schema, col)
        sub, sub_params = _column_test(col, value, placeholder=placeholder, alias=alias)
        parts.extend(sub)
        params.extend(sub_params)
    if ids is not None:
        sub, sub_params = _in_test(_qualified("id", alias), [int(i) for i in ids], placeholder)
        parts.extend(sub)
        params.extend(sub_params)
    if bbox is not None and bbox_sql is not None:
        parts.append(bbox_sql)
        params.extend(float(v) for v in bbox)
    return (" WHERE " + " AND ".join(parts)) if parts else "", params


def _qualified(col: str, alias: str) -> str:
    """*col* quoted, qualified by *alias* when one is given."""
    return f"{alias}.{quote(col)}" if alias else quote(col)


def _check_filterable(schema: LayerSchema, col: str) -> None:
    """Refuse a filter on an unknown or an encrypted column of *schema*."""
    if col != "id" and col not in schema.column_names:
        raise BadInput(f"unknown property {col!r} for layer {schema.name!r}", field=col)
    if col != "id" and schema.column(col).encrypted:
        raise BadInput(
            f"property {col!r} of layer {schema.name!r} is encrypted and cannot be filtered on",
            field=col,
        )


def _in_test(column: str, values: list[Any], placeholder: str) -> tuple[list[str], list[Any]]:
    """``column IN (…)`` over *values*; no values match nothing."""
    if not values:
        return ["FALSE"], []
    return [f"{column} IN ({', '.join([placeholder] * len(values))})"], values


def _prefix_test(
    column: str, value: Prefix, *, field: str, placeholder: str
) -> tuple[list[str], list[Any]]:
    """Code prefixes: ``""`` matches all (no test), no prefixes match nothing."""
    if "" in value.prefixes:
        return [], []
    if not value.prefixes:
        return ["FALSE"], []
    for p in value.prefixes:
        if not p.isdigit():
            raise BadInput(f"area prefix must be digits, got {p!r}", field=field)
    ors = " OR ".join(f"starts_with({column}, {placeholder})" for _ in value.prefixes)
    return [f"({ors})"], list(value.prefixes)


def _column_test(
    col: str, value: Any, *, placeholder: str, alias: str
) -> tuple[list[str], list[Any]]:
    """The conditions (joined by AND) and parameters of one filter on *col*."""
    column = _qualified(col, alias)
    if isinstance(value, Cmp):
        if value.op not in _OPS:
            raise BadInput(f"unknown comparison {value.op!r}", field=col)
        return [f"{column} {value.op} {placeholder}"], [value.value]
    if isinstance(value, Prefix):
        return _prefix_test(column, value, field=col, placeholder=placeholder)
    if isinstance(value, AllOf):
        parts: list[str] = []
        params: list[Any] = []
        for cmp in value.items:
            sub, sub_params = _column_test(col, cmp, placeholder=placeholder, alias=alias)
            parts.extend(sub)
            params.extend(sub_params)
        return parts, params
    if value is None:
        return [f"{column} IS NULL"], []
    if isinstance(value, list | tuple | set | frozenset):
        return _in_test(column, list(value), placeholder)
    return [f"{column} = {placeholder}"], [value]
