"""Bulk import of the registers (households, residents) from XLSX/CSV, on both stores.

Every household and person here is SYNTHETIC (合成数据): names drawn from a
list of common surnames and given names, resident ID numbers made with a
valid GB 11643 check character for the Laixi county code (370285), passport
and permit numbers in their documents' forms. The grids are synthetic boxes.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.common.errors import BadInput
from gridmap.population.documents import mask_document, normalize_document
from gridmap.population.registers import import_registers, resident_key
from gridmap.population.registry import export_residents, find_resident
from gridmap.security.access import SYSTEM
from gridmap.security.privacy import Vault, id_check_char
from gridmap.storage import Store

VAULT = Vault.from_secret("test data key for the registers, synthetic")
GRIDS = [f"370285001001{n:03d}" for n in range(1, 6)]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛"]


def _grids(store: Store) -> None:
    boxes = [shapely.box(120.0 + i * 0.01, 36.0, 120.01 + i * 0.01, 36.01) for i in range(5)]
    store.write(
        "grids",
        gpd.GeoDataFrame(
            {"code": GRIDS, "community_code": "370285001001", "source_id": GRIDS},
            geometry=[shapely.MultiPolygon([b]) for b in boxes],
            crs=4326,
        ),
    )


def resident_id(rng: random.Random) -> str:
    born = f"{rng.randint(1940, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = f"370285{born}{rng.randint(0, 999):03d}"
    return body + id_check_char(body)


def registers(
    n_households: int = 1000, per_household: int = 3, seed: int = 19
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic sheets: households, and residents with every 50th person overseas (passport)."""
    rng = random.Random(seed)
    hh = pd.DataFrame(
        {
            "户号": [f"H{i:05d}" for i in range(n_households)],
            "网格编码": [GRIDS[i % len(GRIDS)] for i in range(n_households)],
            "地址": [
                f"合成路{i // 20 + 1}号{i % 20 + 1}单元 (synthetic)" for i in range(n_households)
            ],
            "户别": [("家庭户", "出租户", "集体户")[i % 3] for i in range(n_households)],
        }
    )
    people = []
    for i in range(n_households * per_household):
        h = i // per_household
        overseas = i % 50 == 7
        people.append(
            {
                "户号": f"H{h:05d}",
                "网格编码": GRIDS[h % len(GRIDS)],
                "姓名": rng.choice(SURNAMES) + rng.choice(GIVEN),
                "证件类型": "护照" if overseas else "居民身份证",
                "证件号码": f"E{10_000_000 + i}" if overseas else resident_id(rng),
                "电话": f"138{i:08d}"[:11],
                "人口类别": "境外人员" if overseas else ("户籍人口", "流动人口")[i % 2],
                "性别": "男" if overseas else None,
                "出生年份": "1988" if overseas else None,
            }
        )
    return hh, pd.DataFrame(people)


def test_documents_of_overseas_residents() -> None:
    assert normalize_document("ｅ１２３４５６７８", "passport") == "E12345678"
    assert normalize_document("m1234567801", "hk_macao_permit") == "M1234567801"
    assert normalize_document("12345678", "taiwan_permit") == "12345678"
    body = "93615619881231001"  # the 2023 foreign permanent resident card: 9 + … + check
    assert normalize_document(body + id_check_char(body), "foreign_permanent_id").startswith("9")
    assert normalize_document("USA370285880101", "foreign_permanent_id") == "USA370285880101"
    for doc, number in (
        ("passport", "ABC"),
        ("passport", "<img src=x>"),
        ("hk_macao_permit", "12345678"),
        ("foreign_permanent_id", body + "0" if id_check_char(body) != "0" else body + "1"),
    ):
        with pytest.raises(BadInput):
            normalize_document(number, doc)
    assert mask_document("E12345678", "passport") == "E*****678"


@pytest.mark.timeout(300)
def test_xlsx_registers_import(store: Store, tmp_path: Path) -> None:
    _grids(store)
    hh, people = registers()
    # a resident ID with a bad check character, on sheet row 2 + 41 = 43
    good = people.at[41, "证件号码"]
    people.at[41, "证件号码"] = good[:17] + ("0" if good[17] != "0" else "1")
    hh_file, res_file = tmp_path / "households.xlsx", tmp_path / "residents.xlsx"
    hh.to_excel(hh_file, index=False)
    people.to_excel(res_file, index=False)

    t0 = time.perf_counter()
    h = import_registers(store, VAULT, hh_file, kind="households")
    r = import_registers(store, VAULT, res_file, kind="residents")
    seconds = time.perf_counter() - t0
    print(f"\n{store.dialect}: 1,000 households + 3,000 residents from XLSX in {seconds:.2f} s")
    assert (h.stored, h.rejected) == (1000, 0)
    assert (r.stored, r.rejected) == (2999, 1)
    bad = r.rows[r.rows["status"] == "rejected"].iloc[0]
    assert int(bad["row"]) == 43 and "GB 11643" in bad["reason"]
    assert store.count("households") == 1000 and store.count("residents") == 2999

    # a passport-holding overseas resident is stored, encrypted and masked
    [person] = find_resident(store, VAULT, SYSTEM, id_number=people.at[0, "证件号码"])
    assert person["id_number"].startswith("370285") and "*" in person["id_number"]
    key = resident_key(VAULT, "passport", "E10000007")
    row = store.read("residents", where={"id_number_index": key})
    assert len(row) == 1
    assert row["id_type"].iat[0] == "passport" and row["category"].iat[0] == "overseas"
    assert row["id_number_masked"].iat[0] == "E*****007"
    assert row["gender"].iat[0] == "M" and int(row["birth_year"].iat[0]) == 1988
    assert VAULT.decrypt(row["id_number_enc"].iat[0], "id_number") == "E10000007"
    assert "E10000007" not in " ".join(map(str, row.iloc[0].tolist()))

    # the export is masked
    export = export_residents(store, VAULT, SYSTEM)
    assert len(export) == 2999 and not export["id_number"].str.contains("E10000007").any()

    # idempotent by the natural keys: nothing is added twice
    again = import_registers(store, VAULT, res_file, kind="residents")
    assert (again.stored, again.skipped, again.rejected) == (0, 2999, 1)
    assert import_registers(store, VAULT, hh_file, kind="households").skipped == 1000
    assert store.count("residents") == 2999


def test_rows_rejected_with_their_reasons(store: Store, tmp_path: Path) -> None:
    _grids(store)
    hh, people = registers(n_households=3, per_household=2)
    hh.loc[len(hh)] = ["H99999", "999999999999999", "合成路1号", "家庭户"]  # unknown grid
    hh.to_csv(tmp_path / "hh.csv", index=False)
    h = import_registers(store, VAULT, tmp_path / "hh.csv", kind="households")
    assert (h.stored, h.rejected) == (3, 1)
    assert "no grid in force" in h.rows.iloc[3]["reason"]
    people.loc[0, "证件类型"] = "护照"  # a passport for a registered (户籍) resident
    people.loc[0, "证件号码"] = "E77777777"
    people.loc[1, "姓名"] = "<img onerror=alert(1)>"
    people.loc[2, "户号"] = "H00042"  # no such household
    people.loc[3, "证件号码"] = people.loc[4, "证件号码"]  # the same person twice
    people.to_csv(tmp_path / "people.csv", index=False)
    r = import_registers(store, VAULT, tmp_path / "people.csv", kind="residents")
    reasons = dict(zip(r.rows["row"], r.rows["reason"], strict=True))
    assert "overseas resident" in reasons[2]
    assert "not allowed in a name" in reasons[3]
    assert "no household H00042" in reasons[4]
    assert "row 5" in reasons[6]  # the second of the twins points at the first
    assert r.stored == 2


def test_cli_imports_registers(tmp_path: Path) -> None:
    from gridmap.storage import open_store

    url = f"duckdb:///{tmp_path / 'g.duckdb'}"
    s = open_store(url, migrate=True)
    _grids(s)
    s.close()
    hh, people = registers(n_households=4, per_household=2)
    people.loc[1, "证件号码"] = "110105194912310021"  # bad check character
    hh.to_excel(tmp_path / "hh.xlsx", index=False)
    people.to_excel(tmp_path / "people.xlsx", index=False)
    runner = CliRunner()
    env = {"GRIDMAP_DATA_KEY": "cli test data key, synthetic people only"}
    res = runner.invoke(
        app,
        [
            "import",
            "registers",
            str(tmp_path / "hh.xlsx"),
            "--kind",
            "households",
            "--database-url",
            url,
        ],
        env=env,
    )
    assert res.exit_code == 0, res.output
    assert "stored 4" in res.output
    res = runner.invoke(
        app,
        [
            "import",
            "registers",
            str(tmp_path / "people.xlsx"),
            "--kind",
            "residents",
            "--database-url",
            url,
            "--report",
            str(tmp_path / "report.csv"),
        ],
        env=env,
    )
    assert res.exit_code == 0, res.output
    assert "stored 7" in res.output and "row 3:" in res.output
    report = pd.read_csv(tmp_path / "report.csv")
    assert list(report["status"]).count("rejected") == 1
    bad = runner.invoke(
        app,
        ["import", "registers", str(tmp_path / "hh.xlsx"), "--kind", "pets", "--database-url", url],
        env=env,
    )
    assert bad.exit_code == 1 and "--kind must be one of" in bad.output
