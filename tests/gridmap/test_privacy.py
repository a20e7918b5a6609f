"""Personal-data validators, masks, encryption and the export guard (pure, no store)."""

from __future__ import annotations

import pandas as pd
import pytest

from gridmap.common.errors import BadInput
from gridmap.security.privacy import (
    Vault,
    formula_safe,
    guard_frame,
    id_check_char,
    mask_id_number,
    mask_name,
    mask_phone,
    normalize_id_number,
    normalize_name,
    normalize_phone,
    upgrade_legacy_id,
)

VALID_IDS = {
    "11010519491231002X": "11010519491231002X",
    "11010519491231002x": "11010519491231002X",
    "110105 1949 1231 002X": "11010519491231002X",
    "１１０１０５１９４９１２３１００２Ｘ": "11010519491231002X",  # full-width
    "110105491231002": "11010519491231002X",  # 15-digit legacy, upgraded
    "１１０１０５４９１２３１００２": "11010519491231002X",
    "370285199001011238": "370285199001011238",
    "\u200b370285199001011238\ufeff": "370285199001011238",  # zero-width stripped
}

BAD_IDS = [
    "110105194912310021",  # check character
    "11010519491231002Y",
    "11010519491231002",  # 17
    "1101051949123100200",  # 19
    "010105194912310020",  # region 0
    "110105199002301230",  # 30 February
    "110105299001011230",  # born in the future
    "110105187001011230",  # before 1880
    "110105491331002",  # legacy, month 13
    "11010519491231002\u202e",  # RTL override
    "１１０１０５１９４９１２３１００２?",
    "",
    None,
    12345678901234567,
    "1" * 10_000,
]


@pytest.mark.parametrize("raw,expected", list(VALID_IDS.items()))
def test_id_numbers_normalised(raw: str, expected: str) -> None:
    assert normalize_id_number(raw) == expected


@pytest.mark.parametrize("raw", BAD_IDS, ids=[repr(b)[:30] for b in BAD_IDS])
def test_bad_id_numbers(raw: object) -> None:
    with pytest.raises(BadInput) as err:
        normalize_id_number(raw)
    assert err.value.field == "id_number"


def test_check_characters() -> None:
    # GB 11643 examples: weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, MOD 11-2.
    assert id_check_char("11010519491231002") == "X"
    assert id_check_char("44052418800101001") == "4"
    assert upgrade_legacy_id("110105491231002") == "11010519491231002X"


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("13812341234", "13812341234"),
        ("+86 138 1234 1234", "13812341234"),
        ("+86-138-1234-1234", "13812341234"),
        ("0086 13812341234", "13812341234"),
        ("8613812341234", "13812341234"),
        ("＋８６ １３８１２３４１２３４", "13812341234"),
        ("(0532) 8765-4321", "053287654321"),
        ("010-12345678", "01012345678"),
        ("138\u200b1234\u200d1234", "13812341234"),
    ],
)
def test_phones_normalised(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "12345",
        "12812341234",
        "1381234123",
        "138123412345",
        "+1 415 555 0100",
        "138abcd1234",
        "138\u202e12341234",
        "",
        None,
        13812341234,
    ],
)
def test_bad_phones(raw: object) -> None:
    with pytest.raises(BadInput):
        normalize_phone(raw)


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("张三", "张三"),
        (" 张三 ", "张三"),
        ("张\u200b三", "张三"),
        ("𠮷田", "𠮷田"),  # outside the BMP, kept
        ("阿不都·热合曼", "阿不都·热合曼"),
        ("Anna  Virtanen", "Anna Virtanen"),
        ("\u3000李四\u3000", "李四"),
    ],
)
def test_names_normalised(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\u200b",
        "张\u202e三",
        "张\u2066三",
        "张\x07三",
        "<img src=x onerror=alert(1)>",
        '=HYPERLINK("http://x")',
        "张3",
        "张" * 65,
        None,
        ["张三"],
    ],
)
def test_bad_names(raw: object) -> None:
    with pytest.raises(BadInput):
        normalize_name(raw)


def test_masks() -> None:
    assert mask_name("张三") == "张*"
    assert mask_name("𠮷田") == "𠮷*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_phone("13812341234") == "138****1234"
    assert mask_id_number("370285199001011234") == "370285********1234"
    assert mask_name(None) is None and mask_phone(None) is None and mask_id_number(None) is None
    assert mask_phone("123") == "***"


@pytest.mark.parametrize(
    "name,phone",
    [
        ("张三丰", "13812341234"),
        ("欧阳娜娜", "138-1234-1234"),
        ("𠮷", "0532 8765 4321"),
        ("li_si", "12345"),
        ("王五", "张三 13812341234"),
    ],
)
def test_event_documents_mask_as_privacy_does(name: str, phone: str) -> None:
    """Events, registers and layers mask a reporter the same way (one masking, in privacy)."""
    from gridmap.events.intake import event_document
    from gridmap.security.access import Principal

    row = {"id": 1, "status": "reported", "reporter": name, "contact": phone, "version": 1}
    doc = event_document(row, principal=Principal("c", "community_staff", areas=("990100001001",)))
    assert (doc["reporter"], doc["contact"]) == (mask_name(name), mask_phone(phone))
    assert "张" not in str(doc["contact"]) and str(doc["contact"]).strip("*0123456789") == ""


def test_phone_mask_ignores_separators() -> None:
    assert mask_phone("138-1234-1234") == mask_phone("138 1234 1234") == "138****1234"
    assert mask_phone("0532-8765-4321") == "053*****4321"
    assert mask_name("张三丰") == "张**"


@pytest.mark.parametrize(
    "value,expected",
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("＝1", "'＝1"),
        ("张*", "张*"),
        ("", ""),
        (5, 5),
        (None, None),
    ],
)
def test_formula_safe(value: object, expected: object) -> None:
    assert formula_safe(value) == expected


def test_guard_frame() -> None:
    df = pd.DataFrame({"=evil": ["=cmd|' /C calc'!A0", "ok"], "n": [1, 2]})
    out = guard_frame(df)
    assert list(out.columns) == ["'=evil", "n"]
    assert out.iloc[0, 0] == "'=cmd|' /C calc'!A0" and out["n"].tolist() == [1, 2]
    assert df.iloc[0, 0] == "=cmd|' /C calc'!A0"  # input untouched


def test_vault() -> None:
    v = Vault.from_secret("a test secret that is long enough")
    a, b = v.encrypt("张三", "name"), v.encrypt("张三", "name")
    assert a != b  # random nonce
    assert v.decrypt(a, "name") == "张三"
    with pytest.raises(BadInput):
        v.decrypt(a, "phone")  # bound to its column
    with pytest.raises(BadInput):
        v.decrypt(a[:-2] + ("A" if a[-2] != "A" else "B") + a[-1], "name")
    with pytest.raises(BadInput):
        Vault.from_secret("another secret, long enough").decrypt(a, "name")
    assert v.blind_index("x", "name") == v.blind_index("x", "name")
    assert v.blind_index("x", "name") != v.blind_index("x", "phone")
    assert v.blind_index("x", "name") != Vault.from_secret("b" * 32).blind_index("x", "name")
    assert "key" not in repr(v).replace("keys hidden", "")
    with pytest.raises(BadInput):
        Vault.from_secret("short")
