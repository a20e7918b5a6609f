"""Personal data (个人信息): normalisation, validation, masking, encryption, safe export.

Residents' names, ID numbers (公民身份号码, GB 11643) and phones are personal
data (个人信息保护法, GB/T 35273). gridmap

- normalises what people type: full-width digits and letters (NFKC),
  ``+86``/``0086`` phone prefixes, separators, zero-width characters;
- rejects what is never legitimate: bidirectional overrides (right-to-left
  spoofing), control characters, markup characters in names;
- validates ID numbers (region, birth date, ISO 7064 MOD 11-2 check
  character) and upgrades 15-digit legacy numbers to 18 digits;
- masks by default (``张*``, ``138****1234``, ``370285********1234``);
- encrypts at rest (AES-256-GCM, the column name as associated data) with an
  HMAC-SHA256 blind index for exact lookup (:class:`Vault`);
- guards spreadsheet exports against formula injection (:func:`formula_safe`).

Rare characters outside the Basic Multilingual Plane (``𠮷``) are kept intact.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import pandas as pd
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gridmap.common.errors import BadInput

__all__ = [
    "ID_WEIGHTS",
    "Vault",
    "formula_safe",
    "guard_frame",
    "id_check_char",
    "id_facts",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "normalize_id_number",
    "normalize_name",
    "normalize_phone",
    "upgrade_legacy_id",
]

#: GB 11643 weights of the first 17 digits (2^(17-i) mod 11).
ID_WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"

#: Invisible characters that are dropped: zero-width space/joiners, word joiner, BOM, soft hyphen.
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")
#: Bidirectional controls (embeddings, overrides, isolates, marks): refused outright.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
#: Characters with a meaning in HTML, SQL or CSV that never occur in a person's name.
_NAME_FORBIDDEN = frozenset("<>&\"'`=;\\/{}[]|$%#@!?*^~+")
_NAME_MAX = 64
_FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def _clean(value: Any, field: str, *, max_len: int) -> str:
    """Common first step: a string, no bidi controls, no zero-width, no control characters."""
    if not isinstance(value, str):
        raise BadInput(f"{field} must be text", field=field)
    if len(value) > max_len * 4:
        raise BadInput(f"{field} is too long", field=field)
    if any(ch in _BIDI for ch in value):
        raise BadInput(f"{field} contains bidirectional control characters", field=field)
    text = "".join(ch for ch in value if ch not in _ZERO_WIDTH)
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") for ch in text):
        raise BadInput(f"{field} contains control or unassigned characters", field=field)
    return text


def normalize_name(value: Any, *, field: str = "name") -> str:
    r"""A person's name, normalised (NFC, trimmed, zero-width characters dropped).

    Names keep their characters, rare ones included (``𠮷``, U+20BB7); the
    middle dot of transliterated names is accepted in its common forms.

    Raises
    ------
    gridmap.common.errors.BadInput
        Empty, longer than 64 characters, bidirectional controls, control
        characters, digits or markup/formula characters (``<img onerror=…>``).

    Examples
    --------
    >>> normalize_name(" 张\u200b三 ")
    '张三'
    >>> normalize_name("𠮷田")
    '𠮷田'
    >>> normalize_name("<img onerror=alert(1)>")
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: name contains characters not allowed in a name: <
    """
    text = unicodedata.normalize("NFC", _clean(value, field, max_len=_NAME_MAX))
    text = " ".join(text.split())  # trims and folds every kind of space (U+3000 too)
    if not text:
        raise BadInput(f"{field} is empty", field=field)
    if len(text) > _NAME_MAX:
        raise BadInput(f"{field} is longer than {_NAME_MAX} characters", field=field)
    bad = [ch for ch in text if ch in _NAME_FORBIDDEN or ch.isdigit()]
    if bad:
        raise BadInput(f"{field} contains characters not allowed in a name: {bad[0]}", field=field)
    return text


def _ascii_token(value: Any, field: str) -> str:
    """NFKC (full-width → ASCII), uppercase, separators removed."""
    text = unicodedata.normalize("NFKC", _clean(value, field, max_len=32))
    return re.sub(r"[\s\-()（）.]", "", text).upper()


def id_check_char(first17: str) -> str:
    """The GB 11643 check character (ISO 7064 MOD 11-2) of the first 17 digits.

    Examples
    --------
    >>> id_check_char("11010519491231002")
    'X'
    """
    if len(first17) != 17 or not first17.isdigit() or not first17.isascii():
        raise BadInput("an ID number's body has 17 digits", field="id_number")
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def _check_birth(yyyymmdd: str, field: str) -> dt.date:
    try:
        born = dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        raise BadInput(f"{field} has an invalid birth date", field=field) from None
    if born.year < 1880 or born > dt.date.today():
        raise BadInput(f"{field} has an impossible birth date", field=field)
    return born


def upgrade_legacy_id(legacy: str) -> str:
    """Upgrade a 15-digit (1985–1999) ID number to its 18-digit form.

    The 2-digit birth year gets the century ``19`` and a check character is
    appended, as the public security organs did when re-issuing cards.

    Examples
    --------
    >>> upgrade_legacy_id("110105491231002")
    '11010519491231002X'
    """
    if len(legacy) != 15 or not legacy.isdigit() or not legacy.isascii():
        raise BadInput("a legacy ID number has 15 digits", field="id_number")
    body = legacy[:6] + "19" + legacy[6:]
    return body + id_check_char(body)


def normalize_id_number(value: Any, *, field: str = "id_number") -> str:
    """Validate a resident ID number and return its 18-character form.

    Full-width digits and ``ｘ`` are normalised, spaces and hyphens dropped;
    15-digit legacy numbers are upgraded (:func:`upgrade_legacy_id`).

    Raises
    ------
    gridmap.common.errors.BadInput
        Wrong length or characters, region code starting with 0, impossible
        birth date, or a check character that does not match.

    Examples
    --------
    >>> normalize_id_number("11010519491231002x")
    '11010519491231002X'
    >>> normalize_id_number("１１０１０５４９１２３１００２")
    '11010519491231002X'
    >>> normalize_id_number("110105194912310021")
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: id_number check character does not match (GB 11643)
    """
    text = _ascii_token(value, field)
    if re.fullmatch(r"[0-9]{15}", text):
        _check_birth("19" + text[6:12], field)
        text = upgrade_legacy_id(text)
    if not re.fullmatch(r"[0-9]{17}[0-9X]", text):
        raise BadInput(f"{field} must have 18 characters (17 digits and a digit or X)", field=field)
    if text[0] == "0":
        raise BadInput(f"{field} has an invalid region code", field=field)
    _check_birth(text[6:14], field)
    if id_check_char(text[:17]) != text[17]:
        raise BadInput(f"{field} check character does not match (GB 11643)", field=field)
    return text


def id_facts(id_number: str) -> tuple[str, int]:
    """Gender (``"F"``/``"M"``) and birth year read from a normalised 18-character ID.

    Examples
    --------
    >>> id_facts("11010519491231002X")
    ('F', 1949)
    """
    return ("M" if int(id_number[16]) % 2 else "F"), int(id_number[6:10])


def normalize_phone(value: Any, *, field: str = "phone") -> str:
    """A Chinese phone number in national form: 11-digit mobile or 0-prefixed landline.

    ``+86``, ``0086`` and ``86`` prefixes, full-width digits, spaces, hyphens
    and parentheses are removed.

    Examples
    --------
    >>> normalize_phone("+86 138-1234-1234")
    '13812341234'
    >>> normalize_phone("＋８６１３８１２３４１２３４")
    '13812341234'
    >>> normalize_phone("(0532) 8765 4321")
    '053287654321'
    >>> normalize_phone("12345")
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: phone is not a mobile (1xx xxxx xxxx) or landline (0xx…) number
    """
    text = _ascii_token(value, field)
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    else:
        if len(text) == 13 and text.startswith("86"):
            text = text[2:]
    if re.fullmatch(r"1[3-9][0-9]{9}", text) or re.fullmatch(r"0[1-9][0-9]{8,10}", text):
        return text
    raise BadInput(
        f"{field} is not a mobile (1xx xxxx xxxx) or landline (0xx…) number", field=field
    )


def mask_name(name: str | None) -> str | None:
    """Keep the first character, one ``*`` for each of the others.

    Examples
    --------
    >>> mask_name("张三"), mask_name("欧阳娜娜"), mask_name("𠮷")
    ('张*', '欧***', '𠮷')
    """
    if name is None:
        return None
    return name[:1] + "*" * (len(name) - 1)


def mask_phone(phone: str | None) -> str | None:
    """Keep the first 3 and the last 4 digits; anything but digits is dropped.

    Dropping separators and text means a contact typed as ``张三 138…`` shows
    no name, and the same number masks the same way however it was written.
    Fewer than 8 digits: every digit masked.

    Examples
    --------
    >>> mask_phone("13812341234"), mask_phone("138-1234-1234"), mask_phone("0532-8765-4321")
    ('138****1234', '138****1234', '053*****4321')
    >>> mask_phone("12345")
    '*****'
    """
    if phone is None:
        return None
    digits = "".join(c for c in phone if c.isdigit())
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_id_number(id_number: str | None) -> str | None:
    """Keep the region code (6) and the last 4 characters.

    Examples
    --------
    >>> mask_id_number("370285199001011234")
    '370285********1234'
    """
    if id_number is None:
        return None
    if len(id_number) <= 10:
        return "*" * len(id_number)
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


def formula_safe(value: Any) -> Any:
    r"""Neutralise spreadsheet formula injection in one exported value.

    Text starting with ``=``, ``+``, ``-``, ``@``, a tab or a line break (or
    their full-width forms) gets a leading apostrophe, so Excel/WPS/LibreOffice
    show it as text; other values pass unchanged (OWASP CSV injection advice).

    Examples
    --------
    >>> formula_safe('=HYPERLINK("http://x","y")')
    '\'=HYPERLINK("http://x","y")'
    >>> formula_safe("张*"), formula_safe(3)
    ('张*', 3)
    """
    if isinstance(value, str) and value.startswith(_FORMULA_LEAD):
        return "'" + value
    return value


def guard_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of *frame* whose text cells (and column names) are :func:`formula_safe`.

    Examples
    --------
    >>> import pandas as pd
    >>> guard_frame(pd.DataFrame({"a": ["=1+1", "ok"]}))["a"].tolist()
    ["'=1+1", 'ok']
    """
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(formula_safe)
    out.columns = [formula_safe(str(c)) for c in out.columns]
    return out


@dataclass(frozen=True, repr=False)
class Vault:
    """Field encryption (AES-256-GCM) and blind indexes (HMAC-SHA256) from one secret.

    Two independent keys are derived with HKDF-SHA256 from the secret: one
    encrypts, one computes blind indexes. Every ciphertext is bound to its
    column (associated data), so a value cannot be moved to another column.

    Parameters
    ----------
    enc_key, index_key : bytes
        32-byte keys; use :meth:`from_secret`.

    Examples
    --------
    >>> v = Vault.from_secret("a test secret that is long enough!!")
    >>> token = v.encrypt("张三", "name")
    >>> v.decrypt(token, "name")
    '张三'
    >>> v.blind_index("13812341234", "phone") == v.blind_index("13812341234", "phone")
    True
    """

    enc_key: bytes
    index_key: bytes

    @classmethod
    def from_secret(cls, secret: str) -> Vault:
        """Derive the encryption and index keys from a secret string."""
        if len(secret) < 16:
            raise BadInput("the data key must have at least 16 characters", field="data_key")

        def derive(info: bytes) -> bytes:
            kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"gridmap-vault-v1", info=info)
            return kdf.derive(secret.encode("utf-8"))

        return cls(derive(b"encrypt"), derive(b"blind-index"))

    def __repr__(self) -> str:
        return "Vault(<keys hidden>)"

    def encrypt(self, plaintext: str, field: str) -> str:
        """Encrypt *plaintext* for column *field*: ``v1.`` + base64(nonce ‖ ciphertext)."""
        nonce = os.urandom(12)
        ct = AESGCM(self.enc_key).encrypt(nonce, plaintext.encode("utf-8"), field.encode())
        return "v1." + base64.urlsafe_b64encode(nonce + ct).decode("ascii")

    def decrypt(self, token: str, field: str) -> str:
        """Decrypt a value of column *field*; ``BadInput`` if it was tampered with."""
        try:
            if not token.startswith("v1."):
                raise ValueError
            raw = base64.urlsafe_b64decode(token[3:].encode("ascii"))
            plain = AESGCM(self.enc_key).decrypt(raw[:12], raw[12:], field.encode())
        except (ValueError, InvalidTag):
            raise BadInput(f"stored {field} cannot be decrypted", field=field) from None
        return plain.decode("utf-8")

    def blind_index(self, normalized: str, field: str) -> str:
        """Deterministic keyed hash of a normalised value, for exact lookup."""
        msg = field.encode() + b"\x00" + normalized.encode("utf-8")
        return hmac.new(self.index_key, msg, hashlib.sha256).hexdigest()
