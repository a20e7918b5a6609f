"""Bulk import of the registers (户籍/实有人口台账): households and residents from spreadsheets.

Communities keep their registers in spreadsheets. :func:`import_registers`
reads a CSV or XLSX sheet (:func:`gridmap.io.tables.read_sheet`), checks every
row, and stores the good ones in one transaction; the report gives each
rejected row its number in the sheet and the reason.

Households (``kind="households"``)
    户号 ``household_no``, 网格编码 ``grid_code`` (a grid in force), 地址
    ``address``, optionally 户别 ``kind`` (家庭户/集体户/出租户 or
    family/collective/rental) and 楼栋 ``building_id``. One household per
    grid and number (the natural key): importing the sheet again adds nothing.
Residents (``kind="residents"``)
    户号 and 网格编码 of a stored household (import the households sheet first),
    姓名 ``name``, 证件类型 ``id_type`` (居民身份证 by default; 护照 and the other
    documents of overseas residents, see :mod:`gridmap.population.documents`), 证件号码
    ``id_number``, optionally 电话 ``phone``, 人口类别 ``category`` (户籍人口,
    流动人口, … 境外人员), and for documents that do not carry them 性别
    ``gender`` and 出生年份 ``birth_year``. A person is registered once (the
    natural key is the document, through its blind index): a row whose
    document is registered already is skipped.

Validation, encryption and masking are those of the registry
(:mod:`gridmap.population.registry`): names, ID numbers (GB 11643) and phones are
normalised and checked, stored encrypted with blind indexes, shown masked.
The import is audited (``personal.import``) with its counts, never its data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from gridmap.common.errors import BadInput, GridmapError
from gridmap.io.tables import read_sheet
from gridmap.population.documents import (
    DOCUMENT_TYPES,
    RESIDENT_ID,
    document_type,
    mask_document,
    normalize_document,
)
from gridmap.population.registry import HOUSEHOLD_KINDS, RESIDENT_CATEGORIES
from gridmap.security import audit
from gridmap.security.access import SYSTEM, Principal
from gridmap.security.auth import PermissionDenied
from gridmap.security.privacy import (
    Vault,
    id_facts,
    mask_name,
    mask_phone,
    normalize_name,
    normalize_phone,
)
from gridmap.storage import Prefix, Store

__all__ = ["KINDS", "RegisterReport", "import_registers", "resident_key"]

#: What :func:`import_registers` imports.
KINDS: dict[str, tuple[str, str]] = {
    "households": ("户", "Households"),
    "residents": ("实有人口", "Residents"),
}
_WRITERS = frozenset({"city_admin", "town_coordinator", "community_staff"})

#: Column → the names it has in registers (first found wins, case-insensitive).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "household_no": ("household_no", "户号", "户编号"),
    "grid_code": ("grid_code", "网格编码", "网格代码", "所属网格"),
    "address": ("address", "地址", "住址", "现住址"),
    "kind": ("kind", "户别", "户类型"),
    "building_id": ("building_id", "楼栋", "楼栋编号"),
    "name": ("name", "姓名"),
    "id_type": ("id_type", "证件类型", "证件种类"),
    "id_number": ("id_number", "证件号码", "身份证号", "身份证号码", "公民身份号码"),
    "phone": ("phone", "电话", "联系电话", "手机", "手机号"),
    "category": ("category", "人口类别", "类别", "人员类别"),
    "gender": ("gender", "性别"),
    "birth_year": ("birth_year", "出生年份", "出生年"),
}
_REQUIRED = {
    "households": ("household_no", "grid_code", "address"),
    "residents": ("household_no", "grid_code", "name", "id_number"),
}
_GENDERS = {"男": "M", "女": "F", "m": "M", "f": "F", "male": "M", "female": "F"}


@dataclass(frozen=True)
class RegisterReport:
    """What an import of a register did.

    ``rows`` has one row per sheet row: ``row`` (its number in the sheet,
    the header being 1), ``status`` (``stored``, ``skipped`` — registered
    already — or ``rejected``) and ``reason``.
    """

    kind: str
    path: str
    rows: pd.DataFrame
    seconds: float

    def count(self, status: str) -> int:
        """Rows with *status*."""
        return int((self.rows["status"] == status).sum())

    @property
    def stored(self) -> int:
        """Rows stored."""
        return self.count("stored")

    @property
    def skipped(self) -> int:
        """Rows registered already (by their natural key)."""
        return self.count("skipped")

    @property
    def rejected(self) -> int:
        """Rows refused, each with its reason."""
        return self.count("rejected")

    def lines(self, *, max_rows: int = 20) -> list[str]:
        """Counts, then the rejected rows (number and reason) for the CLI."""
        out = [
            f"{self.kind} ← {Path(self.path).name}: read {len(self.rows)} · stored {self.stored}"
            f" · skipped (registered already) {self.skipped} · rejected {self.rejected}"
            f" · {self.seconds:.2f} s"
        ]
        bad = self.rows[self.rows["status"] == "rejected"]
        for r in bad.head(max_rows).itertuples():
            out.append(f"  row {r.row}: {r.reason}")
        if len(bad) > max_rows:
            out.append(f"  … {len(bad) - max_rows} more rejected rows (--report FILE lists all)")
        return out


def resident_key(vault: Vault, id_type: str, number: str) -> str:
    """The blind index of a document: the registry's natural key of a person.

    A resident ID is indexed as the registry always did (so lookups by ID
    number find it); other documents with their type in front, so that a
    passport and a permit with the same number are different people.
    """
    value = number if id_type == RESIDENT_ID else f"{id_type}:{number}"
    return vault.blind_index(value, "id_number")


def _columns(sheet: pd.DataFrame, kind: str) -> dict[str, str]:
    low = {str(c).strip().lower(): str(c) for c in sheet.columns if c != "row"}
    found: dict[str, str] = {}
    for col, names in _COLUMNS.items():
        for n in names:
            if n.lower() in low:
                found[col] = low[n.lower()]
                break
    missing = [c for c in _REQUIRED[kind] if c not in found]
    if missing:
        wanted = ", ".join(f"{_COLUMNS[c][1]} ({c})" for c in missing)
        raise BadInput(f"the {kind} sheet has no column {wanted}", field="file")
    return found


def _choice(
    value: str | None, choices: Mapping[str, tuple[str, str]], field: str, default: str
) -> str:
    if value is None:
        return default
    text = value.strip()
    if text in choices:
        return text
    for code, (zh, en) in choices.items():
        if text in (zh, en) or text.lower() == en.lower():
            return code
    raise BadInput(f"{field} {text[:40]!r} is not one of {', '.join(choices)}", field=field)


def _grid_code(value: str | None, grids: set[str], principal: Principal) -> str:
    code = (value or "").strip()
    if not (code.isascii() and code.isdigit() and len(code) == 15):
        raise BadInput("网格编码 (grid_code) must have 15 digits", field="grid_code")
    if code not in grids or not principal.covers(code):
        raise BadInput(f"no grid in force with code {code} in your areas", field="grid_code")
    return code


def _household_no(value: str | None) -> str:
    number = (value or "").strip()
    if not number or len(number) > 40 or not all(c.isalnum() or c in "-_/" for c in number):
        raise BadInput(
            "户号 (household_no): 1–40 letters, digits, '-', '_' or '/'", field="household_no"
        )
    return number


def _households(
    sheet: pd.DataFrame,
    cols: Mapping[str, str],
    grids: set[str],
    principal: Principal,
    now: pd.Timestamp,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Household rows to write and (status, reason) per sheet row."""
    out: list[dict[str, Any]] = []
    result: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], int] = {}
    get = _getter(sheet, cols)
    row_numbers = [int(r) for r in sheet["row"]]
    for i in range(len(sheet)):
        try:
            code = _grid_code(get("grid_code", i), grids, principal)
            number = _household_no(get("household_no", i))
            addr = " ".join(str(get("address", i) or "").split())
            if not addr or len(addr) > 200 or any(c in addr for c in "<>"):
                raise BadInput("地址 (address) must be 1–200 characters without markup")
            kind = _choice(get("kind", i), HOUSEHOLD_KINDS, "户别 (kind)", "family")
            building = get("building_id", i)
            building_id = None if building is None else int(building)
        except (BadInput, ValueError) as exc:
            result.append(("rejected", _why(exc)))
            continue
        if (code, number) in seen:
            result.append(
                ("rejected", f"household {number} of {code} is on row {seen[(code, number)]} too")
            )
            continue
        seen[(code, number)] = int(row_numbers[i])
        result.append(("stored", ""))
        out.append(
            {
                "source_key": f"household:{code}:{number}",
                "household_no": number,
                "kind": kind,
                "address": addr,
                "building_id": building_id,
                "grid_code": code,
                "created_by": principal.name,
                "created_at": now,
            }
        )
    return pd.DataFrame(out), result


def _getter(sheet: pd.DataFrame, cols: Mapping[str, str]) -> Callable[[str, int], str | None]:
    values = {c: sheet[src].tolist() for c, src in cols.items()}

    def get(col: str, i: int) -> str | None:
        v = values.get(col)
        return None if v is None else v[i]

    return get


def _why(exc: Exception) -> str:
    if isinstance(exc, GridmapError):
        return exc.message
    if isinstance(exc, ValueError):
        return f"not a number: {str(exc)[:80]}"
    return str(exc)[:200]


def _person(
    get: Callable[[str, int], str | None], i: int
) -> tuple[str, str, str, str | None, str, str | None, int | None]:
    """(name, id_type, number, phone, category, gender, birth_year) of row *i*, checked."""
    name = normalize_name(get("name", i) or "")
    id_type = document_type(get("id_type", i))
    category = _choice(get("category", i), RESIDENT_CATEGORIES, "人口类别 (category)", "registered")
    if id_type != RESIDENT_ID and category != "overseas":
        zh = DOCUMENT_TYPES[id_type][0]
        raise BadInput(
            f"a {zh} ({id_type}) is the document of an overseas resident (境外人员): "
            f"category {category!r} needs a resident ID card (居民身份证)",
            field="id_type",
        )
    number = normalize_document(get("id_number", i) or "", id_type)
    raw_phone = get("phone", i)
    phone = None if raw_phone in (None, "") else normalize_phone(raw_phone)
    if id_type == RESIDENT_ID:
        sex, born = id_facts(number)
        return name, id_type, number, phone, category, sex, born
    g = get("gender", i)
    gender = None if g is None else _GENDERS.get(g.strip().lower())
    if g is not None and gender is None:
        raise BadInput(f"性别 (gender) {g[:10]!r} is not 男/女 (M/F)", field="gender")
    y = get("birth_year", i)
    birth_year = None if y is None else int(str(y)[:4])
    if birth_year is not None and not (1880 <= birth_year <= dt.date.today().year):
        raise BadInput(f"出生年份 (birth_year) {birth_year} is impossible", field="birth_year")
    return name, id_type, number, phone, category, gender, birth_year


def _residents(
    vault: Vault,
    sheet: pd.DataFrame,
    cols: Mapping[str, str],
    households: Mapping[tuple[str, str], int],
    principal: Principal,
    now: pd.Timestamp,
) -> tuple[pd.DataFrame, list[tuple[str, str]], list[str]]:
    """Resident rows to write, (status, reason) per sheet row, and the keys looked up."""
    out: list[dict[str, Any]] = []
    result: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    get = _getter(sheet, cols)
    row_numbers = [int(r) for r in sheet["row"]]
    for i in range(len(sheet)):
        try:
            code = (get("grid_code", i) or "").strip()
            number_hh = _household_no(get("household_no", i))
            household_id = households.get((code, number_hh))
            if household_id is None or not principal.covers(code):
                raise BadInput(f"no household {number_hh} in grid {code or '(none)'}")
            name, id_type, number, phone, category, gender, birth_year = _person(get, i)
        except (BadInput, ValueError) as exc:
            result.append(("rejected", _why(exc)))
            continue
        key = resident_key(vault, id_type, number)
        if key in seen:
            result.append(("rejected", f"the same {DOCUMENT_TYPES[id_type][0]} as row {seen[key]}"))
            continue
        seen[key] = int(row_numbers[i])
        result.append(("stored", ""))
        out.append(
            {
                "source_key": f"resident:{key}",
                "household_id": household_id,
                "grid_code": code,
                "category": category,
                "name_enc": vault.encrypt(name, "name"),
                "name_masked": mask_name(name),
                "id_number_enc": vault.encrypt(number, "id_number"),
                "id_number_index": key,
                "id_number_masked": mask_document(number, id_type),
                "phone_enc": None if phone is None else vault.encrypt(phone, "phone"),
                "phone_index": None if phone is None else vault.blind_index(phone, "phone"),
                "phone_masked": mask_phone(phone),
                "gender": gender,
                "birth_year": birth_year,
                "created_by": principal.name,
                "created_at": now,
                "id_type": id_type,
            }
        )
    return pd.DataFrame(out), result, list(seen)


def _registered(store: Store, keys: Sequence[str]) -> set[str]:
    """The blind indexes among *keys* that are registered already (any area)."""
    found: set[str] = set()
    for start in range(0, len(keys), 1000):
        chunk = list(keys[start : start + 1000])
        rows = store.read("residents", where={"id_number_index": chunk})
        found.update(str(k) for k in rows["id_number_index"])
    return found


def _known_households(store: Store, codes: Sequence[str]) -> dict[tuple[str, str], int]:
    frame = store.read("households", where={"grid_code": sorted(set(codes))}) if codes else None
    if frame is None or frame.empty:
        return {}
    return {
        (str(c), str(n)): int(i)
        for c, n, i in zip(frame["grid_code"], frame["household_no"], frame["id"], strict=True)
    }


def import_registers(
    store: Store,
    vault: Vault,
    path: str | Path,
    *,
    kind: Literal["households", "residents"] | str,
    principal: Principal = SYSTEM,
) -> RegisterReport:
    """Import a households or residents sheet (CSV/XLSX) in one transaction; see the module docs.

    Parameters
    ----------
    store : Store
        Where the registers are.
    vault : Vault
        Encrypts names, document numbers and phones (the service's data key).
    path : str or Path
        The sheet (``.csv``, ``.xlsx``).
    kind : {"households", "residents"}
        Which register the sheet is.
    principal : Principal
        Who imports: rows outside their areas are rejected (default: the CLI's
        system principal, everything).

    Returns
    -------
    RegisterReport
        One row per sheet row, with the status and reason.

    Raises
    ------
    gridmap.common.errors.BadInput
        An unreadable sheet, an unknown *kind*, a missing column; nothing is stored.
    """
    import time

    t0 = time.perf_counter()
    if kind not in KINDS:
        raise BadInput(f"--kind must be one of {', '.join(KINDS)}", field="kind")
    if principal.role not in _WRITERS:
        raise PermissionDenied(f"role {principal.role!r} may not import registers")
    sheet = read_sheet(path)
    cols = _columns(sheet, kind)
    now = pd.Timestamp(dt.datetime.now(dt.UTC))
    with store.scoped(principal.areas), store.transaction():
        if kind == "households":
            grids = set(
                store.read("grids", where={"valid_to": None, "code": Prefix(principal.areas)})[
                    "code"
                ].astype(str)
            )
            frame, result = _households(sheet, cols, grids, principal, now)
            if len(frame):
                known = _known_households(store, frame["grid_code"].tolist())
                have = [
                    (c, n) in known
                    for c, n in zip(frame["grid_code"], frame["household_no"], strict=True)
                ]
                result = _mark_skipped(result, have, "household registered already")
                frame = frame[~np.asarray(have, dtype=bool)]
                if len(frame):
                    store.write("households", frame)
        else:
            codes = [str(c).strip() for c in sheet[cols["grid_code"]] if c]
            known = _known_households(store, codes)
            frame, result, keys = _residents(vault, sheet, cols, known, principal, now)
            if len(frame):
                stored = _registered(store, keys)
                have = [k in stored for k in frame["id_number_index"]]
                result = _mark_skipped(result, have, "person registered already")
                frame = frame[~np.asarray(have, dtype=bool)]
                if len(frame):
                    store.write("residents", frame)
        rows = pd.DataFrame(
            {
                "row": sheet["row"].to_numpy(),
                "status": [s for s, _ in result],
                "reason": [r for _, r in result],
            }
        )
        audit.record(
            store,
            principal,
            "personal.import",
            kind,
            {
                "file": Path(path).name[:100],
                **{s: int((rows["status"] == s).sum()) for s in ("stored", "skipped", "rejected")},
            },
        )
    return RegisterReport(kind, str(path), rows, time.perf_counter() - t0)


def _mark_skipped(
    result: list[tuple[str, str]], have: Sequence[bool], reason: str
) -> list[tuple[str, str]]:
    """Turn the stored rows whose key exists (in the order of *have*) into skipped."""
    out = list(result)
    flags = iter(have)
    for i, (status, _) in enumerate(out):
        if status == "stored" and next(flags):
            out[i] = ("skipped", reason)
    return out
