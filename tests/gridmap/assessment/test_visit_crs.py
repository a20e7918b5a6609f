"""Door-knock visit locations accept ``crs`` like every other coordinate input."""

from __future__ import annotations

import pytest

from gridmap.assessment.doorknock import parse_visit
from gridmap.common.errors import BadInput
from gridmap.geo.chinacrs import from_wgs84

# A doorway in Laixi (莱西), where the GCJ-02 offset is real (hundreds of metres).
LON, LAT = 120.5263, 36.8865


def _visit(**extra: object) -> dict[str, object]:
    return {"household_id": 7, "status": "visited", "at": "2026-11-05T10:00+08:00", **extra}


@pytest.mark.parametrize("crs", ["gcj02", "GCJ-02", "bd09"])
def test_chinese_coordinates_are_converted(crs: str) -> None:
    system = "bd09" if crs == "bd09" else "gcj02"
    x, y = from_wgs84(LON, LAT, system)
    v = parse_visit(
        _visit(location={"type": "Point", "coordinates": [float(x), float(y)]}, crs=crs)
    )
    assert v.lon == pytest.approx(LON, abs=1e-6) and v.lat == pytest.approx(LAT, abs=1e-6)
    assert abs(float(x) - LON) > 1e-3  # the offset was real


def test_projected_coordinates_are_converted() -> None:
    # CGCS2000 / 3-degree Gauss-Kruger zone 40 (EPSG:4528): x in metres with the zone prefix.
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 4528, always_xy=True).transform(LON, LAT)
    v = parse_visit(_visit(location={"type": "Point", "coordinates": [x, y]}, crs="EPSG:4528"))
    assert v.lon == pytest.approx(LON, abs=1e-6) and v.lat == pytest.approx(LAT, abs=1e-6)


def test_without_crs_positions_are_wgs84_and_checked() -> None:
    v = parse_visit(_visit(location={"type": "Point", "coordinates": [LON, LAT]}))
    assert (v.lon, v.lat) == (LON, LAT)
    with pytest.raises(BadInput, match="out of range"):
        parse_visit(_visit(location={"type": "Point", "coordinates": [4e5, 4e6]}))
    with pytest.raises(BadInput):
        parse_visit(_visit(location={"type": "Point", "coordinates": [LON, LAT]}, crs="mars"))
