"""Personal columns encrypted at rest: one place for every store's write and read path.

Columns marked ``encrypted`` in the model (:class:`gridmap.common.model.Column`; today
``events.reporter`` and ``events.contact``: the name, phone or e-mail a citizen,
the 12345 hotline or an Open311 client gives; and ``webhook_subscriptions.secret``,
the key deliveries are signed with) hold AES-256-GCM ciphertext
(:class:`gridmap.security.privacy.Vault`, the same keys as residents' fields). Each value
is bound to its table and column (associated data ``events.reporter``), so a
ciphertext cannot be moved to another column.

Both stores call :func:`seal` on every frame they write or update and
:func:`unseal` on every frame they read, so every reader (API, Open311, reports,
exports, console, KPIs) gets the clear values and decides itself what to drop
or mask. SQL that renders values in the database (vector tiles, GeoJSON pages
written by PostgreSQL) cannot decrypt: tiles leave these columns out, and
GeoJSON pages asking for them are written from a frame instead.

The account that reported (``events.reported_by``) stays plain: it is the key
of the KPIs per worker, of "my reports" and of the audit.

Existing clear values are encrypted by the migration that introduced the
encryption (:data:`POST_MIGRATION`, run by ``Store.migrate`` in the
migration's transaction).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

import pandas as pd
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gridmap.common.model import LayerSchema, layer_schema
from gridmap.security.privacy import Vault
from gridmap.storage.base import StoreUnavailable

__all__ = [
    "DEVELOPMENT_DATA_KEY",
    "POST_MIGRATION",
    "development_vault",
    "encrypted_columns",
    "is_sealed",
    "seal",
    "seal_rows",
    "unseal",
]

#: The data key of a development setup (``GRIDMAP_DATA_KEY`` unset), the same as
#: :data:`gridmap.common.settings.DEV_DATA_KEY`: a store opened without a vault uses it.
DEVELOPMENT_DATA_KEY = "gridmap-development-data-key-do-not-use-in-production"

_PREFIX = "v1."


@cache
def development_vault() -> Vault:
    """The vault of :data:`DEVELOPMENT_DATA_KEY` (stores opened without one use it)."""
    return Vault.from_secret(DEVELOPMENT_DATA_KEY)


def encrypted_columns(schema: LayerSchema) -> list[str]:
    """Names of the columns of *schema* stored encrypted.

    Examples
    --------
    >>> from gridmap.common.model import layer_schema
    >>> encrypted_columns(layer_schema("events"))
    ['reporter', 'contact']
    >>> encrypted_columns(layer_schema("grids"))
    []
    """
    return [c.name for c in schema.columns if c.encrypted]


def _aad(schema: LayerSchema, column: str) -> str:
    return f"{schema.name}.{column}"


def is_sealed(value: Any) -> bool:
    """Whether *value* looks like a stored ciphertext (``v1.`` + base64).

    Examples
    --------
    >>> is_sealed(development_vault().encrypt("张三", "events.reporter")), is_sealed("张三")
    (True, False)
    """
    return isinstance(value, str) and value.startswith(_PREFIX) and len(value) >= 40


def _isna(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _encrypt_all(vault: Vault, values: Iterable[Any], aad: str) -> list[str | None]:
    """:meth:`Vault.encrypt` of each value (same format), with one cipher object per batch."""
    aes, ad = AESGCM(vault.enc_key), aad.encode()
    return [None if _isna(v) else _encrypt_one(aes, ad, v) for v in values]


def _decrypt_all(vault: Vault, values: Iterable[Any], aad: str) -> list[str | None]:
    """:meth:`Vault.decrypt` of each value, with one cipher object per batch."""
    aes = AESGCM(vault.enc_key)
    return [None if _isna(v) else _decrypt_one(aes, aad, v) for v in values]


def _encrypt_one(aes: AESGCM, ad: bytes, value: Any) -> str:
    nonce = os.urandom(12)
    raw = nonce + aes.encrypt(nonce, str(value).encode("utf-8"), ad)
    return _PREFIX + base64.urlsafe_b64encode(raw).decode("ascii")


def _decrypt_one(aes: AESGCM, aad: str, value: Any) -> str:
    try:
        text = str(value)
        if not text.startswith(_PREFIX):
            raise ValueError(text[:0])
        raw = base64.urlsafe_b64decode(text[len(_PREFIX) :].encode("ascii"))
        return aes.decrypt(raw[:12], raw[12:], aad.encode()).decode("utf-8")
    except (ValueError, InvalidTag) as exc:  # a wrong key, or the value was altered
        raise StoreUnavailable(
            f"stored {aad} cannot be decrypted: GRIDMAP_DATA_KEY is not the key the "
            "data was written with, or the value was altered"
        ) from exc


def seal(schema: LayerSchema, frame: pd.DataFrame, vault: Vault) -> pd.DataFrame:
    """*frame* with its encrypted columns (those present) replaced by ciphertext.

    The input is not changed; a frame without such columns is returned as is.

    Examples
    --------
    >>> from gridmap.common.model import layer_schema
    >>> ev = layer_schema("events")
    >>> v = development_vault()
    >>> sealed = seal(ev, pd.DataFrame({"reporter": ["张三", None], "status": ["reported"] * 2}), v)
    >>> is_sealed(sealed.loc[0, "reporter"]), sealed.loc[1, "reporter"], sealed.loc[0, "status"]
    (True, None, 'reported')
    >>> unseal(ev, sealed, v).loc[0, "reporter"]
    '张三'
    """
    cols = [c for c in encrypted_columns(schema) if c in frame.columns]
    if not cols or frame.empty:
        return frame
    out = frame.copy(deep=False)
    for c in cols:
        out[c] = pd.Series(
            _encrypt_all(vault, frame[c].to_numpy(dtype=object), _aad(schema, c)),
            index=frame.index,
            dtype=object,
        )
    return out


def unseal(schema: LayerSchema, frame: pd.DataFrame, vault: Vault) -> pd.DataFrame:
    """*frame* read from a store with its encrypted columns decrypted (in place).

    Raises
    ------
    gridmap.storage.base.StoreUnavailable
        If a value cannot be decrypted with *vault* (the data key changed).
    """
    for c in encrypted_columns(schema):
        if c in frame.columns and len(frame):
            frame[c] = pd.Series(
                _decrypt_all(vault, frame[c].to_numpy(dtype=object), _aad(schema, c)),
                index=frame.index,
                dtype=object,
            )
    return frame


def seal_rows(
    rows: Sequence[Sequence[Any]], columns: Sequence[str], vault: Vault, *, layer: str
) -> list[tuple[Any, ...]]:
    """Encrypt the clear values of ``(id, col1, col2, …)`` rows read by a migration.

    Values that are already ciphertext are kept (the step may run twice);
    only rows with something to encrypt are returned, as ``(col1, …, id)``
    tuples ready for ``UPDATE … SET col1 = ?, … WHERE id = ?``.

    Examples
    --------
    >>> v = development_vault()
    >>> out = seal_rows([(1, "张三", None), (2, None, None)], ["reporter", "contact"], v,
    ...                 layer="events")
    >>> len(out), is_sealed(out[0][0]), out[0][1:]
    (1, True, (None, 1))
    """
    schema = layer_schema(layer)
    out: list[tuple[Any, ...]] = []
    for row in rows:
        values = list(row[1:])
        if not any(not _isna(v) and not is_sealed(v) for v in values):
            continue
        sealed = [
            v if _isna(v) or is_sealed(v) else vault.encrypt(str(v), _aad(schema, c))
            for c, v in zip(columns, values, strict=True)
        ]
        out.append((*sealed, row[0]))
    return out


def _seal_existing_events(
    fetch: Callable[[str], list[tuple[Any, ...]]],
    update: Callable[[str, list[tuple[Any, ...]]], None],
    vault: Vault,
    placeholder: str,
) -> int:
    """Migration 025: encrypt the reporters and contacts stored in clear before it."""
    cols = encrypted_columns(layer_schema("events"))
    rows = fetch(
        f"SELECT id, {', '.join(cols)} FROM events WHERE "
        + " OR ".join(f"{c} IS NOT NULL" for c in cols)
    )
    todo = seal_rows(rows, cols, vault, layer="events")
    if todo:
        sets = ", ".join(f"{c} = {placeholder}" for c in cols)
        update(f"UPDATE events SET {sets} WHERE id = {placeholder}", todo)
    return len(todo)


#: Python steps run right after a migration's SQL, in its transaction:
#: ``step(fetch, update, vault, placeholder)`` with the dialect's ``fetch(sql)``
#: (all rows) and ``update(sql, rows)`` (executemany).
POST_MIGRATION: dict[
    int,
    Callable[
        [
            Callable[[str], list[tuple[Any, ...]]],
            Callable[[str, list[tuple[Any, ...]]], None],
            Vault,
            str,
        ],
        int,
    ],
] = {25: _seal_existing_events}
