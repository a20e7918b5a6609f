"""``one_point_cells`` (the scalar H3 call of the intake path) equals ``point_cells``."""

from __future__ import annotations

import numpy as np
import shapely

from gridmap.geo.h3cells import H3_RESOLUTIONS, cell_column, one_point_cells, point_cells


def test_one_point_cells_equal_point_cells() -> None:
    rng = np.random.default_rng(22)
    # Helsinki (the demo extract), Laixi, and anywhere on the globe.
    xy = np.concatenate(
        [
            rng.uniform((24.8, 60.1), (25.1, 60.3), size=(300, 2)),
            rng.uniform((120.3, 36.7), (120.7, 37.0), size=(300, 2)),
            rng.uniform((-180, -90), (180, 90), size=(400, 2)),
            [[180.0, 90.0], [-180.0, -90.0], [0.0, 0.0]],
        ]
    )
    frame = point_cells(shapely.points(xy))
    for i, (x, y) in enumerate(xy):
        one = one_point_cells(float(x), float(y))
        assert list(one) == [cell_column(r) for r in H3_RESOLUTIONS]
        assert one == {c: int(frame.loc[i, c]) for c in frame.columns}, (x, y)


def test_one_point_cells_missing_for_bad_coordinates() -> None:
    for x, y in [(float("nan"), 1.0), (1.0, float("inf")), (181.0, 0.0), (0.0, -90.5)]:
        assert set(one_point_cells(x, y).values()) == {None}
