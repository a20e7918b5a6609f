"""Tests of gridmap.geo.chinacrs against fixed values and two independent implementations.

Oracles: ``prcoords`` (takes and returns ``(lat, lon)``; ``*_bored`` are its precise
inverses) and ``coord_convert.transform`` (takes and returns ``(lon, lat)``).
"""

from __future__ import annotations

import doctest
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import prcoords
import pytest
from coord_convert import transform as cc
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from gridmap.common.errors import BadInput
from gridmap.geo import chinacrs
from gridmap.geo.chinacrs import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    is_chinese_crs,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

Pair = tuple[float, float]
Transform = Callable[..., tuple[np.ndarray, np.ndarray]]

# Forward transforms are the same formulas as the oracles: float rounding only.
FORWARD_TOL = 1e-9
# prcoords' precise inverses stop at a 1e-5 degree step, so they are good to ~1e-7.
PRCOORDS_INVERSE_TOL = 1e-7
ROUNDTRIP_TOL = 1e-8

# WGS84 sample points across China (lon, lat), reused by several tests.
CITIES: dict[str, Pair] = {
    "beijing_tiananmen": (116.391349, 39.907375),
    "shanghai": (121.4737, 31.2304),
    "guangzhou": (113.2644, 23.1291),
    "urumqi": (87.6168, 43.8256),
    "harbin": (126.5350, 45.8038),
    "lhasa": (91.1172, 29.6469),
    "sanya": (109.5119, 18.2528),
    "kashgar": (75.9897, 39.4704),
    "on_lon_105": (105.0, 35.0),
}
OUTSIDE: dict[str, Pair] = {
    "paris": (2.2945, 48.8584),
    "new_york": (-74.0445, 40.6892),
    "null_island": (0.0, 0.0),
    "moscow": (37.6173, 55.7558),
    "north_of_box": (120.0, 60.0),
    "east_of_box": (140.0, 35.0),
}

# Tiananmen, computed with both oracles (they agree to the last digit).
TIANANMEN_WGS84 = (116.391349, 39.907375)
TIANANMEN_GCJ02 = (116.39759019123527, 39.90877629414095)
TIANANMEN_BD09 = (116.40396302524593, 39.915119833724745)

ALL_TRANSFORMS: list[Transform] = [
    wgs84_to_gcj02,
    gcj02_to_wgs84,
    gcj02_to_bd09,
    bd09_to_gcj02,
    wgs84_to_bd09,
    bd09_to_wgs84,
]

china_lon = st.floats(min_value=73.0, max_value=135.0)
china_lat = st.floats(min_value=18.0, max_value=53.0)
china_points = st.tuples(china_lon, china_lat)
few_examples = settings(max_examples=200, deadline=None, database=None)


# --------------------------------------------------------------------------- oracle wrappers


def prc(func: Callable[..., tuple[float, float]], lon: float, lat: float) -> Pair:
    """Call a prcoords function with (lon, lat) and return (lon, lat)."""
    out_lat, out_lon = func((lat, lon))
    return float(out_lon), float(out_lat)


@contextmanager
def prcoords_eps(eps: float) -> Iterator[None]:
    """Make prcoords' precise inverses iterate to ``eps`` instead of their 1e-5 default."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prcoords, "PRC_EPS", eps)
        yield


def as_pair(result: tuple[np.ndarray, np.ndarray]) -> Pair:
    return float(result[0]), float(result[1])


def max_error(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    return float(max(np.max(np.abs(a[0] - b[0])), np.max(np.abs(a[1] - b[1]))))


# --------------------------------------------------------------------------- fixed values


def test_tiananmen_fixed_values() -> None:
    assert_allclose(wgs84_to_gcj02(*TIANANMEN_WGS84), TIANANMEN_GCJ02, rtol=0, atol=1e-12)
    assert_allclose(gcj02_to_bd09(*TIANANMEN_GCJ02), TIANANMEN_BD09, rtol=0, atol=1e-12)
    assert_allclose(wgs84_to_bd09(*TIANANMEN_WGS84), TIANANMEN_BD09, rtol=0, atol=1e-12)
    assert_allclose(gcj02_to_wgs84(*TIANANMEN_GCJ02), TIANANMEN_WGS84, rtol=0, atol=1e-10)
    assert_allclose(bd09_to_gcj02(*TIANANMEN_BD09), TIANANMEN_GCJ02, rtol=0, atol=1e-10)
    assert_allclose(bd09_to_wgs84(*TIANANMEN_BD09), TIANANMEN_WGS84, rtol=0, atol=1e-10)


def test_tiananmen_fixed_values_agree_with_oracles() -> None:
    lon, lat = TIANANMEN_WGS84
    assert prc(prcoords.wgs_gcj, lon, lat) == pytest.approx(TIANANMEN_GCJ02, abs=1e-12)
    assert cc.wgs2gcj(lon, lat) == pytest.approx(TIANANMEN_GCJ02, abs=1e-12)
    assert prc(prcoords.wgs_bd, lon, lat) == pytest.approx(TIANANMEN_BD09, abs=1e-12)
    assert cc.wgs2bd(lon, lat) == pytest.approx(TIANANMEN_BD09, abs=1e-12)


def test_gcj02_offset_is_a_few_hundred_metres() -> None:
    lon, lat = np.array(list(CITIES.values())).T
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    metres = np.hypot((g_lon - lon) * np.cos(np.radians(lat)), g_lat - lat) * 111_320
    assert np.all((metres > 50) & (metres < 1000))


def test_docstring_examples() -> None:
    result = doctest.testmod(chinacrs, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10
    assert result.failed == 0


# --------------------------------------------------------------------------- oracles, fixed points


@pytest.mark.parametrize(("lon", "lat"), list(CITIES.values()), ids=list(CITIES))
def test_cities_match_oracles(lon: float, lat: float) -> None:
    gcj = as_pair(wgs84_to_gcj02(lon, lat))
    assert gcj == pytest.approx(prc(prcoords.wgs_gcj, lon, lat), abs=FORWARD_TOL)
    assert gcj == pytest.approx(cc.wgs2gcj(lon, lat), abs=FORWARD_TOL)
    bd = as_pair(gcj02_to_bd09(*gcj))
    assert bd == pytest.approx(prc(prcoords.gcj_bd, *gcj), abs=FORWARD_TOL)
    assert bd == pytest.approx(cc.gcj2bd(*gcj), abs=FORWARD_TOL)

    back = as_pair(gcj02_to_wgs84(*gcj))
    assert back == pytest.approx((lon, lat), abs=ROUNDTRIP_TOL)
    assert back == pytest.approx(prc(prcoords.gcj_wgs_bored, *gcj), abs=PRCOORDS_INVERSE_TOL)
    assert back == pytest.approx(cc.gcj2wgs(*gcj), abs=PRCOORDS_INVERSE_TOL)
    assert as_pair(bd09_to_gcj02(*bd)) == pytest.approx(
        prc(prcoords.bd_gcj_bored, *bd), abs=PRCOORDS_INVERSE_TOL
    )
    assert as_pair(bd09_to_wgs84(*bd)) == pytest.approx((lon, lat), abs=ROUNDTRIP_TOL)


def test_dense_sample_matches_oracles() -> None:
    rng = np.random.default_rng(20240601)
    lon = rng.uniform(73.0, 135.0, 2000)
    lat = rng.uniform(18.0, 53.0, 2000)
    points = list(zip(lon.tolist(), lat.tolist(), strict=True))

    gcj = wgs84_to_gcj02(lon, lat)
    gcj_points = list(zip(gcj[0].tolist(), gcj[1].tolist(), strict=True))
    bd = gcj02_to_bd09(*gcj)
    bd_points = list(zip(bd[0].tolist(), bd[1].tolist(), strict=True))

    def oracle(func: Callable[..., Pair], pts: list[Pair]) -> tuple[np.ndarray, np.ndarray]:
        lon_out, lat_out = np.array([func(*p) for p in pts]).T
        return lon_out, lat_out

    def prc_oracle(
        func: Callable[..., tuple[float, float]], pts: list[Pair]
    ) -> tuple[np.ndarray, np.ndarray]:
        return oracle(lambda x, y: prc(func, x, y), pts)

    assert max_error(gcj, prc_oracle(prcoords.wgs_gcj, points)) < FORWARD_TOL
    assert max_error(gcj, oracle(cc.wgs2gcj, points)) < FORWARD_TOL
    assert max_error(bd, prc_oracle(prcoords.gcj_bd, gcj_points)) < FORWARD_TOL
    assert max_error(bd, oracle(cc.gcj2bd, gcj_points)) < FORWARD_TOL

    wgs = gcj02_to_wgs84(*gcj)
    assert max_error(wgs, (lon, lat)) < ROUNDTRIP_TOL
    assert max_error(wgs, prc_oracle(prcoords.gcj_wgs_bored, gcj_points)) < PRCOORDS_INVERSE_TOL
    assert max_error(wgs, oracle(cc.gcj2wgs, gcj_points)) < PRCOORDS_INVERSE_TOL
    gcj_back = bd09_to_gcj02(*bd)
    assert max_error(gcj_back, prc_oracle(prcoords.bd_gcj_bored, bd_points)) < 1e-7
    # prcoords iterated to convergence is a second exact inverse: we must agree closely.
    with prcoords_eps(1e-13):
        assert max_error(wgs, prc_oracle(prcoords.gcj_wgs_bored, gcj_points)) < 1e-9
        assert max_error(gcj_back, prc_oracle(prcoords.bd_gcj_bored, bd_points)) < 1e-9
        assert max_error(bd09_to_wgs84(*bd), prc_oracle(prcoords.bd_wgs_bored, bd_points)) < 1e-9


def test_precise_inverses_beat_the_one_step_inverses() -> None:
    lon, lat = np.array(list(CITIES.values())).T
    gcj = wgs84_to_gcj02(lon, lat)
    crude = np.array([prc(prcoords.gcj_wgs, x, y) for x, y in zip(*gcj, strict=True)]).T
    assert max_error((crude[0], crude[1]), (lon, lat)) > 1e-7
    assert max_error(gcj02_to_wgs84(*gcj), (lon, lat)) < 1e-10

    bd = gcj02_to_bd09(*gcj)
    textbook = np.array([cc.bd2gcj(x, y) for x, y in zip(*bd, strict=True)]).T
    assert max_error((textbook[0], textbook[1]), gcj) > 1e-7
    assert max_error(bd09_to_gcj02(*bd), gcj) < 1e-10


# --------------------------------------------------------------------------- properties


@few_examples
@given(china_lon, china_lat)
def test_forward_matches_oracles(lon: float, lat: float) -> None:
    gcj = as_pair(wgs84_to_gcj02(lon, lat))
    assert gcj == pytest.approx(prc(prcoords.wgs_gcj, lon, lat), abs=FORWARD_TOL)
    assert gcj == pytest.approx(cc.wgs2gcj(lon, lat), abs=FORWARD_TOL)
    bd = as_pair(gcj02_to_bd09(lon, lat))
    assert bd == pytest.approx(prc(prcoords.gcj_bd, lon, lat), abs=FORWARD_TOL)
    assert bd == pytest.approx(cc.gcj2bd(lon, lat), abs=FORWARD_TOL)
    assert as_pair(wgs84_to_bd09(lon, lat)) == pytest.approx(cc.wgs2bd(lon, lat), abs=FORWARD_TOL)


@few_examples
@given(china_lon, china_lat)
def test_gcj02_inverse_roundtrips_and_matches_prcoords(lon: float, lat: float) -> None:
    # As a WGS84 point: wgs -> gcj -> wgs.
    gcj = as_pair(wgs84_to_gcj02(lon, lat))
    assert as_pair(gcj02_to_wgs84(*gcj)) == pytest.approx((lon, lat), abs=ROUNDTRIP_TOL)
    # As a GCJ-02 point: the inverse maps back onto it and agrees with prcoords.
    wgs = as_pair(gcj02_to_wgs84(lon, lat))
    assert as_pair(wgs84_to_gcj02(*wgs)) == pytest.approx((lon, lat), abs=ROUNDTRIP_TOL)
    assert wgs == pytest.approx(prc(prcoords.gcj_wgs_bored, lon, lat), abs=PRCOORDS_INVERSE_TOL)
    assert wgs == pytest.approx(cc.gcj2wgs(lon, lat), abs=PRCOORDS_INVERSE_TOL)


@few_examples
@given(china_lon, china_lat)
def test_bd09_inverse_roundtrips_and_matches_prcoords(lon: float, lat: float) -> None:
    bd = as_pair(gcj02_to_bd09(lon, lat))
    assert as_pair(bd09_to_gcj02(*bd)) == pytest.approx((lon, lat), abs=ROUNDTRIP_TOL)
    gcj = as_pair(bd09_to_gcj02(lon, lat))
    assert as_pair(gcj02_to_bd09(*gcj)) == pytest.approx((lon, lat), abs=ROUNDTRIP_TOL)
    assert gcj == pytest.approx(prc(prcoords.bd_gcj_bored, lon, lat), abs=PRCOORDS_INVERSE_TOL)
    wgs = as_pair(wgs84_to_bd09(lon, lat))
    assert as_pair(bd09_to_wgs84(*wgs)) == pytest.approx((lon, lat), abs=ROUNDTRIP_TOL)


@few_examples
@given(st.lists(china_points, min_size=1, max_size=20))
def test_vectorized_equals_per_point(points: list[Pair]) -> None:
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    for func in ALL_TRANSFORMS:
        vec_lon, vec_lat = func(lon, lat)
        one = np.array([as_pair(func(x, y)) for x, y in points])
        assert_allclose(vec_lon, one[:, 0], rtol=0, atol=1e-12)
        assert_allclose(vec_lat, one[:, 1], rtol=0, atol=1e-12)


@few_examples
@given(
    st.floats(min_value=-180.0, max_value=180.0),
    st.floats(min_value=-89.0, max_value=89.0),
)
def test_bd09_roundtrips_worldwide(lon: float, lat: float) -> None:
    bd = as_pair(gcj02_to_bd09(lon, lat))
    assert as_pair(bd09_to_gcj02(*bd)) == pytest.approx((lon, lat), abs=ROUNDTRIP_TOL)


# --------------------------------------------------------------------------- the whole box


def test_roundtrip_everywhere_in_the_box() -> None:
    # A dense grid over the full GCJ-02 box, edges included.
    lon, lat = np.meshgrid(np.linspace(72.004, 137.8347, 500), np.linspace(0.8293, 55.8271, 400))
    gcj = wgs84_to_gcj02(lon, lat)
    assert max_error(gcj, (lon, lat)) > 1e-3  # every point moved
    wgs = gcj02_to_wgs84(*gcj)
    assert max_error(wgs, (lon, lat)) < ROUNDTRIP_TOL
    bd_wgs = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert max_error(bd_wgs, (lon, lat)) < ROUNDTRIP_TOL


def test_hundred_thousand_points_in_one_call() -> None:
    rng = np.random.default_rng(7)
    lon = rng.uniform(73.0, 135.0, 100_000)
    lat = rng.uniform(18.0, 53.0, 100_000)
    for crs in ("gcj02", "bd09"):
        out = from_wgs84(lon, lat, crs)
        assert out[0].shape == out[1].shape == (100_000,)
        assert max_error(to_wgs84(*out, crs), (lon, lat)) < ROUNDTRIP_TOL


# --------------------------------------------------------------------------- outside China


@pytest.mark.parametrize(("lon", "lat"), list(OUTSIDE.values()), ids=list(OUTSIDE))
def test_outside_china_unchanged(lon: float, lat: float) -> None:
    assert as_pair(wgs84_to_gcj02(lon, lat)) == (lon, lat)
    assert as_pair(gcj02_to_wgs84(lon, lat)) == (lon, lat)
    assert as_pair(to_wgs84(lon, lat, "gcj02")) == (lon, lat)
    assert cc.wgs2gcj(lon, lat) == (lon, lat)
    with pytest.warns(UserWarning, match="Non-Chinese"):
        assert prc(prcoords.wgs_gcj, lon, lat) == (lon, lat)
    # BD-09 has no box: only Baidu's own shift applies.
    assert as_pair(wgs84_to_bd09(lon, lat)) == pytest.approx(cc.gcj2bd(lon, lat), abs=1e-12)


def test_outside_points_in_an_array_are_unchanged() -> None:
    lon = np.array([116.391349, 2.2945, 140.0])
    lat = np.array([39.907375, 48.8584, 35.0])
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    assert g_lon[0] != lon[0]
    assert_array_equal(g_lon[1:], lon[1:])
    assert_array_equal(g_lat[1:], lat[1:])


def test_box_edges() -> None:
    # Bounds are inclusive, as in both oracles.
    corners = [(72.004, 0.8293), (137.8347, 55.8271)]
    for lon, lat in corners:
        assert as_pair(wgs84_to_gcj02(lon, lat)) == pytest.approx(cc.wgs2gcj(lon, lat), abs=1e-12)
        assert as_pair(wgs84_to_gcj02(lon, lat)) != (lon, lat)
    just_out = [(72.0039, 30.0), (137.8348, 30.0), (100.0, 0.8292), (100.0, 55.8272)]
    for lon, lat in just_out:
        assert as_pair(wgs84_to_gcj02(lon, lat)) == (lon, lat)


def test_inverse_just_outside_the_box_edge() -> None:
    # A WGS84 point just inside the east edge lands outside the box in GCJ-02;
    # the inverse still finds it (the one-step "outside: unchanged" rule would not).
    lon, lat = 137.8345, 30.0
    gcj = as_pair(wgs84_to_gcj02(lon, lat))
    assert gcj[0] > 137.8347
    assert as_pair(gcj02_to_wgs84(*gcj)) == pytest.approx((lon, lat), abs=ROUNDTRIP_TOL)
    # Farther out than any GCJ-02 offset reaches: unchanged.
    assert as_pair(gcj02_to_wgs84(137.9, 30.0)) == (137.9, 30.0)


# --------------------------------------------------------------------------- non-finite input


@pytest.mark.parametrize("func", ALL_TRANSFORMS, ids=lambda f: f.__name__)
def test_non_finite_propagates_as_nan_without_warning(func: Transform) -> None:
    lon = np.array([np.nan, np.inf, -np.inf, 116.0, 116.0, 116.0, 116.0])
    lat = np.array([39.0, 39.0, 39.0, np.nan, np.inf, -np.inf, 39.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out_lon, out_lat = func(lon, lat)
        scalar = func(np.inf, 39.0)
        all_nan = func([np.nan, np.nan], [np.nan, np.nan])
    assert np.isnan(out_lon[:6]).all() and np.isnan(out_lat[:6]).all()
    assert np.isfinite(out_lon[6]) and np.isfinite(out_lat[6])
    assert np.isnan(scalar[0]) and np.isnan(scalar[1])
    assert np.isnan(all_nan[0]).all() and np.isnan(all_nan[1]).all()


@pytest.mark.parametrize("crs", ["wgs84", "gcj02", "bd09", "EPSG:4490"])
def test_non_finite_by_name(crs: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for func in (to_wgs84, from_wgs84):
            out_lon, out_lat = func([np.inf, 116.0], [39.0, 39.0], crs)
            assert np.isnan(out_lon[0]) and np.isnan(out_lat[0])
            assert np.isfinite(out_lon[1])


# --------------------------------------------------------------------------- shapes and types


@pytest.mark.parametrize("func", ALL_TRANSFORMS, ids=lambda f: f.__name__)
def test_shapes_and_dtypes(func: Transform) -> None:
    scalar = func(116.4, 39.9)
    assert all(isinstance(a, np.ndarray) and a.shape == () for a in scalar)
    assert all(a.dtype == np.float64 for a in scalar)

    lists = func([116.4, 121.5], [39.9, 31.2])
    assert lists[0].shape == lists[1].shape == (2,)

    ints = func(116, 39)
    assert ints[0].dtype == np.float64

    grid = func(np.linspace(100, 120, 4), np.linspace(25, 40, 3)[:, None])
    assert grid[0].shape == grid[1].shape == (3, 4)
    flat = func(*np.broadcast_arrays(np.linspace(100, 120, 4), np.linspace(25, 40, 3)[:, None]))
    assert_array_equal(grid[0], flat[0])

    empty = func(np.empty(0), np.empty(0))
    assert empty[0].shape == empty[1].shape == (0,)


@pytest.mark.parametrize("func", ALL_TRANSFORMS, ids=lambda f: f.__name__)
def test_inputs_not_modified(func: Transform) -> None:
    lon = np.array([116.4, np.inf])
    lat = np.array([39.9, 39.9])
    func(lon, lat)
    assert_array_equal(lon, [116.4, np.inf])
    assert_array_equal(lat, [39.9, 39.9])


def test_float32_input_gives_float64() -> None:
    out = wgs84_to_gcj02(np.array([116.4], dtype=np.float32), np.array([39.9], dtype=np.float32))
    assert out[0].dtype == np.float64


def test_bad_coordinates_raise_bad_input() -> None:
    with pytest.raises(BadInput):
        wgs84_to_gcj02("east", 39.9)
    with pytest.raises(BadInput):
        wgs84_to_gcj02([1.0, 2.0, 3.0], [1.0, 2.0])


@pytest.mark.parametrize("func", [gcj02_to_wgs84, bd09_to_gcj02, bd09_to_wgs84])
def test_iteration_settings(func: Transform) -> None:
    with pytest.raises(BadInput) as excinfo:
        func(116.4, 39.9, tol=0.0)
    assert excinfo.value.field == "tol"
    with pytest.raises(BadInput) as excinfo:
        func(116.4, 39.9, max_iter=0)
    assert excinfo.value.field == "max_iter"
    exact = as_pair(func(116.4, 39.9))
    # A single round is not converged yet; a loose tol stops early.
    assert as_pair(func(116.4, 39.9, max_iter=1)) != pytest.approx(exact, abs=1e-11)
    assert as_pair(func(116.4, 39.9, tol=1e-3)) == pytest.approx(exact, abs=1e-4)
    assert as_pair(func(116.4, 39.9, tol=1e-14)) == pytest.approx(exact, abs=1e-11)


# --------------------------------------------------------------------------- by name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wgs84", "wgs84"),
        ("WGS84", "wgs84"),
        ("WGS-84", "wgs84"),
        ("wgs_84", "wgs84"),
        ("EPSG:4326", "wgs84"),
        ("epsg:4326", "wgs84"),
        ("CGCS2000", "wgs84"),
        ("EPSG:4490", "wgs84"),
        ("gcj02", "gcj02"),
        ("GCJ-02", "gcj02"),
        (" gcj02 ", "gcj02"),
        ("bd09", "bd09"),
        ("BD-09", "bd09"),
        ("bd09ll", "bd09"),
    ],
)
def test_names(name: str, expected: str) -> None:
    assert is_chinese_crs(name)
    lon, lat = CITIES["shanghai"]
    reference = {
        "wgs84": (lon, lat),
        "gcj02": as_pair(wgs84_to_gcj02(lon, lat)),
        "bd09": as_pair(wgs84_to_bd09(lon, lat)),
    }[expected]
    assert as_pair(from_wgs84(lon, lat, name)) == reference
    assert as_pair(to_wgs84(*reference, name)) == pytest.approx((lon, lat), abs=ROUNDTRIP_TOL)


@pytest.mark.parametrize("name", ["EPSG:3857", "EPSG:4547", "epsg:32650"])
def test_other_epsg_codes_point_to_pyproj(name: str) -> None:
    assert not is_chinese_crs(name)
    for func in (to_wgs84, from_wgs84):
        with pytest.raises(BadInput, match="pyproj") as excinfo:
            func(116.4, 39.9, name)
        assert excinfo.value.field == "crs"


@pytest.mark.parametrize("name", ["", "mars", "bd09mc", "gcj", "4326", "wgs 72"])
def test_unknown_names_raise_bad_input(name: str) -> None:
    assert not is_chinese_crs(name)
    for func in (to_wgs84, from_wgs84):
        with pytest.raises(BadInput) as excinfo:
            func(116.4, 39.9, name)
        assert excinfo.value.field == "crs"
        assert isinstance(excinfo.value, ValueError)


def test_non_string_crs() -> None:
    assert not is_chinese_crs(4326)  # type: ignore[arg-type]
    with pytest.raises(BadInput):
        to_wgs84(116.4, 39.9, 4326)  # type: ignore[arg-type]


def test_basemap_overlay_roundtrip_by_name() -> None:
    lon, lat = np.array(list(CITIES.values())).T
    for crs in ("wgs84", "gcj02", "bd09", "cgcs2000"):
        assert max_error(to_wgs84(*from_wgs84(lon, lat, crs), crs), (lon, lat)) < ROUNDTRIP_TOL
