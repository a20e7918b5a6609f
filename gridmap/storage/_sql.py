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

    def q(col: str) -> str:
        return f"{alias}.{quote(col)}" if alias else quote(col)

    parts: list[str] = []
    params: list[Any] = []
    allowed = {"id", *schema.column_names}
    for col, value in (where or {}).items():
        if col not in allowed:
            raise BadInput(f"unknown property {col!r} for layer {schema.name!r}", field=col)
        if col != "id" and schema.column(col).encrypted:
            raise BadInput(
                f"property {col!r} of layer {schema.name!r} is encrypted and cannot be filtered on",
                field=col,
            )
        if isinstance(value, Cmp):
            if value.op not in _OPS:
                raise BadInput(f"unknown comparison {value.op!r}", field=col)
            parts.append(f"{q(col)} {value.op} {placeholder}")
            params.append(value.value)
            continue
        if isinstance(value, Prefix):
            if "" in value.prefixes:
                continue
            if not value.prefixes:
                parts.append("FALSE")
                continue
            for p in value.prefixes:
                if not p.isdigit():
                    raise BadInput(f"area prefix must be digits, got {p!r}", field=col)
            ors = " OR ".join(f"starts_with({q(col)}, {placeholder})" for _ in value.prefixes)
            parts.append(f"({ors})")
            params.extend(value.prefixes)
            continue
        if isinstance(value, AllOf):
            for cmp in value.items:
                sub, sub_params = where_sql(
                    schema, {col: cmp}, placeholder=placeholder, alias=alias
                )
                parts.append(sub.removeprefix(" WHERE "))
                params.extend(sub_params)
            continue
        if value is None:
            parts.append(f"{q(col)} IS NULL")
        elif isinstance(value, list | tuple | set | frozenset):
            vals = list(value)
            if not vals:
                parts.append("FALSE")
                continue
            parts.append(f"{q(col)} IN ({', '.join([placeholder] * len(vals))})")
            params.extend(vals)
        else:
            parts.append(f"{q(col)} = {placeholder}")
            params.append(value)
    if ids is not None:
        id_list = [int(i) for i in ids]
        if not id_list:
            parts.append("FALSE")
        else:
            parts.append(f"{q('id')} IN ({', '.join([placeholder] * len(id_list))})")
            params.extend(id_list)
    if bbox is not None and bbox_sql is not None:
        parts.append(bbox_sql)
        params.extend(float(v) for v in bbox)
    return (" WHERE " + " AND ".join(parts)) if parts else "", params
