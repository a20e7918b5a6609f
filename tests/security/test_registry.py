"""The resident registry over the API: masking, unmasking (audited), export, bad input."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient

from gridmap.population.registry import (
    REGISTRATION_REFUSED,
    Person,
    export_residents,
    register_household,
    register_resident,
)
from gridmap.security.access import Principal
from gridmap.security.audit import read_log
from tests.security.conftest import World

PLAINTEXT = ("张三", "11010519491231002X", "13812341234", "𠮷田花子", "370285199001011238")
MASKED = {
    "name": re.compile(r"^.\**$"),
    "id_number": re.compile(r"^\d{6}\*{8}[\dX]{4}$"),
    "phone": re.compile(r"^\d{3}\*+\d{4}$"),
}


def _check_masked(records: list[dict[str, object]]) -> None:
    assert records
    for rec in records:
        assert rec["masked"] is True
        for key, pattern in MASKED.items():
            assert rec[key] is None or pattern.match(str(rec[key])), (key, rec[key])


@pytest.mark.parametrize("user", ["worker_a", "worker_b", "staff_a", "coordinator", "admin"])
def test_masked_in_every_response(
    world: World, client: TestClient, registered: dict[str, int], user: str
) -> None:
    h = world.headers(user)
    responses = [
        client.get("/registry/residents", headers=h),
        client.post(
            "/registry/residents/search", json={"id_number": "11010519491231002X"}, headers=h
        ),
        client.post("/registry/residents/search", json={"phone": "+8613812341234"}, headers=h),
    ]
    rid = registered[f"resident_{world.grid_a}_0"]
    one = client.get(f"/registry/residents/{rid}", headers=h)
    assert one.status_code in (200, 404)
    if one.status_code == 200:
        _check_masked([one.json()])
    for r in responses:
        assert r.status_code == 200, r.text
        if r.json()["residents"]:
            _check_masked(r.json()["residents"])
    export = client.get("/registry/residents.csv", headers=h)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    for r in [*responses, one, export]:
        for text in PLAINTEXT:
            assert text not in r.text, (user, text)


def test_masks_look_right(world: World, client: TestClient, registered: dict[str, int]) -> None:
    rid = registered[f"resident_{world.grid_a}_0"]
    rec = client.get(f"/registry/residents/{rid}", headers=world.headers("coordinator")).json()
    assert (rec["name"], rec["id_number"], rec["phone"]) == (
        "张*",
        "110105********002X",
        "138****1234",
    )
    assert rec["gender"] == "F" and rec["birth_year"] == 1949
    rid = registered[f"resident_{world.grid_a}_1"]
    rec = client.get(f"/registry/residents/{rid}", headers=world.headers("coordinator")).json()
    assert rec["name"] == "𠮷***"
    # The legacy 15-digit number was upgraded; the landline normalised.
    rid = registered[f"resident_{world.grid_b}_0"]
    rec = client.get(f"/registry/residents/{rid}", headers=world.headers("worker_b")).json()
    assert rec["id_number"] == "110101********0010"
    assert rec["phone"] == "053*****4321"


def test_unmask_needs_permission(
    world: World, client: TestClient, registered: dict[str, int]
) -> None:
    rid = registered[f"resident_{world.grid_a}_0"]
    for user in ("coordinator", "staff_a"):
        r = client.get(f"/registry/residents/{rid}?unmask=true", headers=world.headers(user))
        assert r.status_code == 403
        r = client.get("/registry/residents?unmask=true", headers=world.headers(user))
        assert r.status_code == 403


def test_unmask_is_audited(world: World, client: TestClient, registered: dict[str, int]) -> None:
    rid = registered[f"resident_{world.grid_a}_0"]
    before = len(read_log(world.store, action="personal.unmask", limit=None))
    r = client.get(f"/registry/residents/{rid}?unmask=true", headers=world.headers("worker_a"))
    assert r.status_code == 200
    rec = r.json()
    assert (rec["name"], rec["id_number"], rec["phone"]) == (
        "张三",
        "11010519491231002X",
        "13812341234",
    )
    assert rec["masked"] is False
    r = client.post(
        "/registry/residents/search?unmask=true",
        json={"id_number": "１１０１０５１９４９１２３１００２ｘ"},  # full-width
        headers=world.headers("worker_a"),
    )
    assert [x["name"] for x in r.json()["residents"]] == ["张三"]
    log = read_log(world.store, action="personal.unmask", limit=None)
    assert len(log) == before + 2
    last = log.iloc[-2]
    assert last["actor"] == "worker_a" and last["target"] == f"residents:{rid}"
    # The log itself holds no personal data.
    everything = read_log(world.store, limit=None).to_string()
    for text in PLAINTEXT:
        assert text not in everything


def test_reads_are_audited(world: World, client: TestClient, registered: dict[str, int]) -> None:
    before = len(read_log(world.store, action="personal.read", actor="staff_a", limit=None))
    client.get("/registry/residents", headers=world.headers("staff_a"))
    after = read_log(world.store, action="personal.read", actor="staff_a", limit=None)
    assert len(after) == before + 1


def test_encrypted_at_rest(world: World, registered: dict[str, int]) -> None:
    raw = world.store.read("residents")
    text = raw.to_string() + " ".join(str(v) for v in raw.to_numpy().ravel())
    for plain in PLAINTEXT:
        assert plain not in text
    assert raw["name_enc"].str.startswith("v1.").all()


def test_duplicate_id_number_refused_without_an_existence_oracle(
    world: World, client: TestClient, registered: dict[str, int]
) -> None:
    """Issue 25: another area's ID number gets the same neutral refusal as one's own duplicate."""
    own = client.post(
        "/registry/residents",
        json={
            "household_id": registered[f"household_{world.grid_a}"],
            "name": "张三",
            "id_number": "11010519491231002x",
        },
        headers=world.headers("worker_a"),
    )
    # worker_b may not see grid A: before, "a resident with this ID number is already registered"
    other = client.post(
        "/registry/residents",
        json={
            "household_id": registered[f"household_{world.grid_b}"],
            "name": "张三",
            "id_number": "11010519491231002X",
        },
        headers=world.headers("worker_b"),
    )
    assert own.status_code == other.status_code == 400
    assert (
        own.json()
        == other.json()
        == {
            "code": "bad_input",
            "description": REGISTRATION_REFUSED,
            "description_zh": "输入数据无效",
        }
    )
    for word in ("already", "exist", "grid", world.grid_a, "张"):
        assert word not in other.json()["description"]
    refused = read_log(world.store, action="personal.refused", actor="worker_b", limit=None)
    assert len(refused) >= 1 and "11010519491231002X" not in refused.to_string()


BAD_RESIDENTS = {
    "bad checksum": {"id_number": "110105194912310021"},
    "bad date": {"id_number": "110105199002301234"},
    "17 digits": {"id_number": "11010519491231002"},
    "letters": {"id_number": "ABCDEFGHIJKLMNOPQR"},
    "legacy bad date": {"id_number": "110105491331002"},
    "rtl override name": {"name": "张\u202e三"},
    "markup name": {"name": "<img src=x onerror=alert(1)>"},
    "formula name": {"name": '=HYPERLINK("http://x")'},
    "digits name": {"name": "张3"},
    "empty name": {"name": "\u200b \u3000"},
    "control name": {"name": "张\x00三"},
    "bad phone": {"phone": "12345"},
    "phone letters": {"phone": "138abcd1234"},
    "category": {"category": "alien"},
    "extra field": {"unexpected": 1},
    "name not text": {"name": 12},
    "huge id": {"household_id": 2**63},
    "long name": {"name": "张" * 300},
}


@pytest.mark.parametrize("case", BAD_RESIDENTS, ids=list(BAD_RESIDENTS))
def test_bad_resident_input_is_400(
    world: World, client: TestClient, registered: dict[str, int], case: str
) -> None:
    body: dict[str, object] = {
        "household_id": registered[f"household_{world.grid_a}"],
        "name": "王五",
        "id_number": "110101199003074477",
        "phone": "13800000000",
    }
    body.update(BAD_RESIDENTS[case])
    r = client.post("/registry/residents", json=body, headers=world.headers("worker_a"))
    assert r.status_code == 400, (case, r.status_code, r.text)


@pytest.mark.parametrize(
    "path",
    [
        "/registry/residents/0",
        "/registry/residents/-1",
        "/registry/residents/9223372036854775808",
        "/registry/residents/abc",
        "/registry/residents/%00",
        "/registry/residents/..",
        "/registry/residents?limit=0",
        "/registry/residents?limit=10001",
        "/registry/residents?limit=unlimited",
        "/registry/residents?grid=1' OR '1'='1",
        "/registry/residents?grid=99010000100100%00",
        "/registry/households/" + "9" * 10_000,
    ],
)
def test_bad_ids_and_params_are_4xx(world: World, client: TestClient, path: str) -> None:
    r = client.get(path, headers=world.headers("worker_a"))
    assert 400 <= r.status_code < 500, (path, r.status_code)


def test_export_guards_formula_injection(world: World) -> None:
    p = Principal("exporter", "grid_worker", (world.grid_a,))
    h = register_household(world.store, p, grid_code=world.grid_a, address="=cmd|' /C calc'!A0")
    register_resident(
        world.store,
        world.vault,
        p,
        household_id=h["id"],
        person=Person(name="-Alice Smith", id_number="110101199003070011"),
    )
    table = export_residents(world.store, world.vault, p)
    buf = io.StringIO()
    table.to_csv(buf, index=False)
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell
    assert any(cell == "'-***********" for row in rows for cell in row)
