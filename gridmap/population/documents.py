"""Identity documents of residents (证件): the resident ID card and those of overseas residents.

The resident ID card (居民身份证, GB 11643) is validated by
:func:`gridmap.security.privacy.normalize_id_number`. Overseas residents (境外人员) hold
other documents, each checked for its own form:

``passport`` (护照)
    5–17 letters and digits (ICAO 9303 documents; China's own: E/G + 8 digits);
``hk_macao_permit`` (港澳居民来往内地通行证, 回乡证)
    H or M + 8 digits (+ 2 digits of the issue, older cards);
``taiwan_permit`` (台湾居民来往大陆通行证, 台胞证)
    8 digits (+ 2, older cards);
``foreign_permanent_id`` (外国人永久居留身份证)
    the 2023 card: 18 characters, ``9`` first, birth date and a GB 11643 check
    character; the older card: 3 letters (nationality) + 12 digits.

Numbers are normalised as for ID numbers (full-width forms, spaces, hyphens)
and masked so that only their ends show (``E*****678``).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from gridmap.common.errors import BadInput
from gridmap.security.privacy import id_check_char, mask_id_number, normalize_id_number

__all__ = [
    "DOCUMENT_TYPES",
    "RESIDENT_ID",
    "document_type",
    "mask_document",
    "normalize_document",
]

#: The resident ID card, the default document.
RESIDENT_ID = "resident_id"
#: Document types with zh-CN and English names.
DOCUMENT_TYPES: dict[str, tuple[str, str]] = {
    RESIDENT_ID: ("居民身份证", "Resident identity card"),
    "passport": ("护照", "Passport"),
    "hk_macao_permit": (
        "港澳居民来往内地通行证",
        "Mainland travel permit for Hong Kong and Macao residents",
    ),
    "taiwan_permit": ("台湾居民来往大陆通行证", "Mainland travel permit for Taiwan residents"),
    "foreign_permanent_id": ("外国人永久居留身份证", "Foreign permanent resident ID card"),
}
_ALIASES = {
    "身份证": RESIDENT_ID,
    "二代身份证": RESIDENT_ID,
    "居民身份证号码": RESIDENT_ID,
    "回乡证": "hk_macao_permit",
    "港澳通行证": "hk_macao_permit",
    "台胞证": "taiwan_permit",
    "永居证": "foreign_permanent_id",
    "外国人永久居留证": "foreign_permanent_id",
}
_FORMS = {
    "passport": re.compile(r"(?=.*[0-9])[A-Z0-9]{5,17}"),
    "hk_macao_permit": re.compile(r"[HM][0-9]{8}(?:[0-9]{2})?"),
    "taiwan_permit": re.compile(r"[0-9]{8}(?:[0-9]{2})?"),
}


def document_type(value: Any) -> str:
    """The document type code of *value* (a code, or its Chinese name); empty: resident ID.

    Examples
    --------
    >>> document_type("护照"), document_type(None), document_type("台胞证")
    ('passport', 'resident_id', 'taiwan_permit')
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return RESIDENT_ID
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if text.lower() in DOCUMENT_TYPES:
        return text.lower()
    for code, (zh, en) in DOCUMENT_TYPES.items():
        if text in (zh, en) or text.lower() == en.lower():
            return code
    if text in _ALIASES:
        return _ALIASES[text]
    names = ", ".join(f"{c} ({zh})" for c, (zh, _en) in DOCUMENT_TYPES.items())
    raise BadInput(f"unknown document type {text[:40]!r}; one of {names}", field="id_type")


def normalize_document(number: Any, doc_type: str = RESIDENT_ID) -> str:
    """Validate a document number of *doc_type*; return its normal form.

    Raises
    ------
    gridmap.common.errors.BadInput
        A number that is not of the document's form (the resident ID card:
        see :func:`gridmap.security.privacy.normalize_id_number`).

    Examples
    --------
    >>> normalize_document("e 1234 5678", "passport")
    'E12345678'
    >>> normalize_document("Ｈ１２３４５６７８", "hk_macao_permit")
    'H12345678'
    >>> normalize_document("11010519491231002x")
    '11010519491231002X'
    >>> normalize_document("12345", "hk_macao_permit")
    Traceback (most recent call last):
    ...
    gridmap.common.errors.BadInput: id_number is not a Hong Kong/Macao permit number ...
    """
    if doc_type == RESIDENT_ID:
        return normalize_id_number(number)
    if doc_type not in DOCUMENT_TYPES:
        document_type(doc_type)  # raises, naming the types
    if not isinstance(number, str):
        raise BadInput("id_number must be text", field="id_number")
    text = unicodedata.normalize("NFKC", number)
    if len(text) > 64 or any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise BadInput("id_number contains control characters or is too long", field="id_number")
    text = re.sub(r"[\s\-()（）.]", "", text).upper()
    if doc_type == "foreign_permanent_id":
        return _foreign_permanent(text)
    if not _FORMS[doc_type].fullmatch(text):
        what = {
            "passport": "a passport number (5–17 letters and digits)",
            "hk_macao_permit": "a Hong Kong/Macao permit number (H or M + 8 digits)",
            "taiwan_permit": "a Taiwan permit number (8 digits)",
        }[doc_type]
        raise BadInput(f"id_number is not {what}", field="id_number")
    return text


def _foreign_permanent(text: str) -> str:
    if re.fullmatch(r"[A-Z]{3}[0-9]{12}", text):
        return text
    if re.fullmatch(r"9[0-9]{16}[0-9X]", text):
        if id_check_char(text[:17]) != text[17]:
            raise BadInput(
                "id_number check character does not match (foreign permanent resident ID)",
                field="id_number",
            )
        return text
    raise BadInput(
        "id_number is not a foreign permanent resident ID (18 characters starting with 9, "
        "or 3 letters and 12 digits)",
        field="id_number",
    )


def mask_document(number: str | None, doc_type: str = RESIDENT_ID) -> str | None:
    """Masked form: the resident ID as :func:`~gridmap.security.privacy.mask_id_number`, others
    keep their first character and last three.

    Examples
    --------
    >>> mask_document("E12345678", "passport")
    'E*****678'
    >>> mask_document("370285199001011234")
    '370285********1234'
    """
    if number is None:
        return None
    if doc_type in (RESIDENT_ID, "foreign_permanent_id") and len(number) == 18:
        return mask_id_number(number)
    if len(number) <= 5:
        return "*" * len(number)
    return number[0] + "*" * (len(number) - 4) + number[-3:]
