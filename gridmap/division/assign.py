"""Fast point → grid assignment (落格): which grid polygon holds each point.

A :class:`PointGridIndex` answers millions of points against thousands of grid
polygons with the same result as ``geopandas.sjoin`` (``predicate="within"``
or ``"intersects"``) but without a point-in-polygon test for most points:

1. the extent of the grids is cut into a uniform raster of cells;
2. every cell that any grid boundary (outer rings and holes) may touch is
   *marked*: each boundary segment is cut into pieces of at most half a cell
   and every cell meeting a piece's bounding box, widened by a small margin,
   is marked — a superset of the cells the boundary really crosses, so the
   rule is conservative;
3. the unmarked cells form connected pieces (:func:`label_pieces`, the
   4-connected labelling of ``scipy.ndimage.label`` in numpy, so that a core
   install needs no scipy) that no boundary crosses, so every point of a
   piece lies in the interior of the same grids: one exact test (GEOS,
   through ``shapely.STRtree``) of one cell centre per piece labels the
   whole piece;
4. a point in an unmarked cell is answered by two array look-ups;
5. a marked cell that only one boundary segment marks is split by that
   segment's line into two sides, each wholly in one grid (or none): when the
   grids form a valid coverage (``shapely.coverage_is_valid``: no overlaps),
   orienting the rings (exterior counter-clockwise, holes clockwise) puts each
   grid on the left of its own edges, so the side of the point — the sign of
   an orientation determinant whose floating-point error is bounded as in
   Shewchuk's ``orient2d`` filter — names its grid. Points the filter cannot
   decide (on or within rounding of the line), points in cells several
   segments mark (near vertices) and every marked-cell point when the grids
   overlap get the exact GEOS test.

Why hand-written: shapely's ``STRtree.query(points, predicate=...)`` (what
``sjoin`` runs) tests every point against the candidate polygons, and the
rasterizers at hand (e.g. GDAL's ``all_touched``) do not promise a
conservative cover of the boundary in floating point, which exactness needs.
Step 2 makes the cover provable: the cell of a coordinate is
``floor((x - x0) * inv)``, monotone in ``x`` under IEEE rounding, and the
margin exceeds the rounding error of the interpolated piece ends.

Boundary rule (the same as ``sjoin``): with ``predicate="within"`` a point
exactly on a grid's boundary (e.g. a shared edge) is in no grid; with
``"intersects"`` it touches every grid around it. Where several grids hold a
point (a shared edge under ``"intersects"``, or overlapping grids) the first
grid in input order wins, i.e. the lowest ``index_right`` position among
``sjoin``'s matches (``sjoin`` itself lists several matches in the order of
its tree, so "its first match" is not a stable rule). Grids are assumed to be
valid polygons (they are validated when stored); anything non-polygonal is
answered exactly, point by point.

This is gridmap's one point → grid assignment: :func:`gridmap.division.bisect.assign_points`,
the batch kernel (:class:`gridmap.batch.GridIndex`, ``within``) and the grid
statistics (:mod:`gridmap.division.stats`, ``intersects``) all answer through
it, the last two with the grids sorted by code, so that "first grid wins" is
"smallest code wins" on every path.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import shapely

__all__ = ["PointGridIndex", "Predicate", "label_pieces", "locate_in_grids"]

Predicate = Literal["within", "intersects"]

_EXACT = -2  # cell label: the cell may be crossed by a boundary, test exactly
_MAX_CELLS = 1 << 24
# Shewchuk's error bound for the orientation determinant (ccwerrboundA, with his
# epsilon = 2**-53): when |det| exceeds it times |detleft| + |detright|, the
# floating-point sign is the exact sign.
_CCW_ERRBOUND = (3.0 + 16.0 * 2.0**-53) * 2.0**-53


class PointGridIndex:
    """A raster of cells over grid polygons that answers most points without a geometry test.

    Parameters
    ----------
    grids : array-like of shapely geometries
        Grid polygons (any CRS; the points must use the same one). Missing or
        empty geometries never hold a point.
    cells : int, optional
        Number of raster cells (default: about 2,000 per grid, at most 2**24).
        More cells answer more points by look-up and cost more to build.
    points : int, optional
        How many points will be asked, when known: sizes the default raster
        (one cell per point when the grids form a valid coverage, four
        otherwise, never more than the default above).

    Examples
    --------
    >>> import numpy as np, shapely
    >>> idx = PointGridIndex([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])
    >>> idx.query(np.array([0.5, 1.5, 1.0, 3.0]), np.array([0.5, 0.5, 0.5, 0.5])).tolist()
    [0, 1, -1, -1]
    >>> idx.query(np.array([1.0]), np.array([0.5]), predicate="intersects").tolist()
    [0]
    """

    def __init__(
        self, grids: npt.ArrayLike, *, cells: int | None = None, points: int | None = None
    ) -> None:
        geoms = np.asarray(grids, dtype=object).ravel()
        self.grids = geoms
        self._cell_seg: np.ndarray | None = None  # step 5: segment of single-segment cells
        self._seg: np.ndarray | None = None
        self._seg_grid = np.empty((0, 2), dtype=np.int64)
        ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        types = shapely.get_type_id(geoms[ok])
        self._exact_only = bool(len(types) == 0 or not np.isin(types, (3, 6)).all())
        if self._exact_only:
            self._setup_extent(np.array([0.0, 0.0, 1.0, 1.0]), 16)
            self.cell_label = np.full(self.ny * self.nx, _EXACT, dtype=np.int32)
            return
        # sides of a segment name grids only when no two grids overlap
        sides = bool(shapely.is_valid(geoms[ok]).all() and shapely.coverage_is_valid(geoms[ok]))
        n = max(int(ok.sum()), 1)
        if cells is None:
            cells = 2048 * n
            if points is not None:
                # points near an edge are cheap on the side path: a finer raster
                # does not pay there (1M points in 2,000 grids: the same time
                # with 250k to 1M cells, 1.4x with 4M); without it, it does
                cells = min(cells, max(4096, (1 if sides else 4) * points))
        target = min(max(int(cells), 16), _MAX_CELLS)
        b = shapely.bounds(geoms[ok])
        self._setup_extent(
            np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()]), target
        )
        marked = self._mark_boundaries(geoms[ok], np.flatnonzero(ok), sides)
        self.cell_label = self._label_cells(marked)

    def _setup_extent(self, bounds: np.ndarray, target: int) -> None:
        minx, miny, maxx, maxy = (float(v) for v in bounds)
        w = max(maxx - minx, 1e-12)
        h = max(maxy - miny, 1e-12)
        nx = max(round(np.sqrt(target * w / h)), 1)
        ny = max(round(target / nx), 1)
        cw, ch = w / nx, h / ny
        # One spare cell on every side: points on the outer edge of the extent
        # fall in the raster and are tested like any other.
        self.x0, self.y0 = minx - cw, miny - ch
        self.nx, self.ny = nx + 2, ny + 2
        self.cw, self.ch = cw, ch
        self.inv_x, self.inv_y = 1.0 / cw, 1.0 / ch

    def _cells(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Column and row of each coordinate (one formula for points and boundaries)."""
        i = np.floor((x - self.x0) * self.inv_x)
        j = np.floor((y - self.y0) * self.inv_y)
        return i, j

    def _mark_boundaries(self, geoms: np.ndarray, positions: np.ndarray, sides: bool) -> np.ndarray:
        """Cells any boundary piece may touch (conservative).

        With *sides*, also keeps, for every cell that a single segment marks,
        that segment and the grids (positions in the constructor's input) on
        its left and right (step 5 of the module's method).
        """
        # rings oriented so that each grid lies on the left of its own edges
        parts, part_of = shapely.get_parts(
            shapely.orient_polygons(geoms, exterior_cw=False), return_index=True
        )
        rings, ring_of = shapely.get_rings(parts, return_index=True)
        xy, line = shapely.get_coordinates(rings, return_index=True)
        same = np.flatnonzero((line[1:] == line[:-1]) & (xy[1:] != xy[:-1]).any(axis=1))
        seg = np.concatenate([xy[same], xy[same + 1]], axis=1)
        grid = positions[part_of[ring_of[line[same]]]]
        # a shared edge is listed by both grids, once each way: keep it once,
        # with the grid that has it left-to-right on its left, the other on its right
        flip = (seg[:, 0] > seg[:, 2]) | ((seg[:, 0] == seg[:, 2]) & (seg[:, 1] > seg[:, 3]))
        seg[flip] = seg[flip][:, [2, 3, 0, 1]]
        order = np.lexsort(seg.T[::-1])
        seg, grid, flip = seg[order], grid[order], flip[order]
        start = np.flatnonzero(np.r_[True, (seg[1:] != seg[:-1]).any(axis=1)])
        if sides:
            none = np.iinfo(np.int64).max
            left = np.minimum.reduceat(np.where(flip, none, grid), start)
            right = np.minimum.reduceat(np.where(flip, grid, none), start)
            self._seg_grid = np.stack(
                [np.where(left == none, -1, left), np.where(right == none, -1, right)], axis=1
            )
        seg = seg[start]
        if sides:
            self._seg = seg
        a, d = seg[:, :2], seg[:, 2:] - seg[:, :2]
        # m pieces of at most half a cell per segment: m + 1 samples along it
        span = np.maximum(np.abs(d[:, 0]) * self.inv_x, np.abs(d[:, 1]) * self.inv_y)
        m = np.maximum(np.ceil(span * 2.0), 1).astype(np.int64)
        owner = np.repeat(np.arange(len(seg)), m + 1)
        first = np.cumsum(m + 1) - (m + 1)
        t = (np.arange(len(owner)) - np.repeat(first, m + 1)) / m[owner]
        sx = a[owner, 0] + d[owner, 0] * t
        sy = a[owner, 1] + d[owner, 1] * t
        # margin: far above the rounding error of the interpolation, far below a cell;
        # the cell formula is monotone, so a piece's widened box spans the cells
        # from min(lo) to max(hi) of its two samples
        ex, ey = self.cw * 1e-6, self.ch * 1e-6
        ilo, jlo = self._cells(sx - ex, sy - ey)
        ihi, jhi = self._cells(sx + ex, sy + ey)
        q = np.ones(len(owner), dtype=bool)
        q[first + m] = False  # the last sample of a segment starts no piece
        q = np.flatnonzero(q)
        i0 = np.minimum(ilo[q], ilo[q + 1]).clip(0, self.nx - 1).astype(np.int64)
        i1 = np.maximum(ihi[q], ihi[q + 1]).clip(0, self.nx - 1).astype(np.int64)
        j0 = np.minimum(jlo[q], jlo[q + 1]).clip(0, self.ny - 1).astype(np.int64)
        j1 = np.maximum(jhi[q], jhi[q + 1]).clip(0, self.ny - 1).astype(np.int64)
        marked = np.zeros(self.ny * self.nx, dtype=bool)
        base = j0 * self.nx + i0
        # a piece's box is at most half a cell (plus margins) wide: it meets at
        # most two columns and two rows
        wide, tall = i1 > i0, j1 > j0
        hits = [
            (base, owner[q]),
            (base[wide] + 1, owner[q][wide]),
            (base[tall] + self.nx, owner[q][tall]),
            (base[wide & tall] + self.nx + 1, owner[q][wide & tall]),
        ]
        for cells, _ in hits:
            marked[cells] = True
        if sides:
            # the segment of each cell, -1 where several mark it: one scatter
            # keeps some segment per cell, a second pass finds the cells
            # another segment marks too (no sort of the ~10^6 marks)
            cell_seg = np.full(self.ny * self.nx, -1, dtype=np.int32)
            for cells, segs in hits:
                cell_seg[cells] = segs
            shared = np.zeros(self.ny * self.nx, dtype=bool)
            for cells, segs in hits:
                shared[cells[cell_seg[cells] != segs]] = True
            cell_seg[shared] = -1
            self._cell_seg = cell_seg
        return marked.reshape(self.ny, self.nx)

    def _label_cells(self, marked: np.ndarray) -> np.ndarray:
        """Grid of each unmarked cell (-1 none), ``_EXACT`` for marked cells."""
        pieces, count = label_pieces(~marked)
        piece_grid = np.full(count + 1, -1, dtype=np.int32)
        if count:
            # Any one cell of each piece (a piece lies wholly in one grid or in
            # none): one scatter over the raster instead of a loop over the pieces.
            flat = pieces.ravel()
            where = np.zeros(count + 1, dtype=np.int64)
            where[flat] = np.arange(flat.size)
            rows, cols = np.divmod(where[1:], self.nx)
            cx = self.x0 + (cols + 0.5) * self.cw
            cy = self.y0 + (rows + 0.5) * self.ch
            piece_grid[1:] = self._exact(cx, cy, "intersects")
        out = piece_grid[pieces]
        out[marked] = _EXACT
        return np.asarray(out.ravel(), dtype=np.int32)

    def _exact(
        self, x: np.ndarray, y: np.ndarray, predicate: Predicate, points: np.ndarray | None = None
    ) -> np.ndarray:
        """First grid holding each point by the GEOS predicate (-1 none)."""
        out = np.full(len(x), -1, dtype=np.int64)
        if not len(x):
            return out
        pts = np.asarray(shapely.points(x, y) if points is None else points, dtype=object)
        # As sjoin does: a tree over the points queried with the (prepared) grids;
        # contains(grid, point) is within(point, grid) by definition.
        gi, pi = shapely.STRtree(pts).query(
            self.grids, predicate="contains" if predicate == "within" else "intersects"
        )
        if len(pi):
            order = np.lexsort((gi, pi))[::-1]  # last write wins: the lowest grid index
            out[pi[order]] = gi[order]
        return out

    def query(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        predicate: Predicate = "within",
        points: npt.ArrayLike | None = None,
    ) -> np.ndarray:
        """Position of the grid holding each point, ``-1`` where none does.

        Parameters
        ----------
        x, y : array-like of float
            Point coordinates (same CRS as the grids); NaN gives ``-1``.
        predicate : {"within", "intersects"}
            ``within``: points on a boundary are in no grid; ``intersects``:
            they go to the first grid touching them.
        points : array-like of shapely Points, optional
            The same points as geometries, when at hand (saves building them
            for the exact tests).

        Returns
        -------
        numpy.ndarray of int64
            Index into the grids given to the constructor.
        """
        if predicate not in ("within", "intersects"):
            raise ValueError(f"predicate must be 'within' or 'intersects', got {predicate!r}")
        xs = np.asarray(x, dtype=float).ravel()
        ys = np.asarray(y, dtype=float).ravel()
        i, j = self._cells(xs, ys)
        inside = (i >= 0) & (i < self.nx) & (j >= 0) & (j < self.ny)  # False for NaN
        # whole-array steps (no boolean indexing of the big arrays): outside
        # points read cell 0 and are set to -1 afterwards
        flat = j * self.nx + i
        flat[~inside] = 0
        out: np.ndarray = np.asarray(self.cell_label[flat.astype(np.int64)], dtype=np.int64)
        out[~inside] = -1
        if self._exact_only:  # no raster: every point with coordinates is tested
            exact = np.flatnonzero(np.isfinite(xs) & np.isfinite(ys))
        else:
            exact = np.flatnonzero(out == _EXACT)
        if self._cell_seg is not None and len(exact):
            answered, grid = self._side(flat[exact].astype(np.int64), xs[exact], ys[exact])
            out[exact[answered]] = grid
            exact = exact[~answered]
        geoms = None if points is None else np.asarray(points, dtype=object).ravel()[exact]
        out[exact] = self._exact(xs[exact], ys[exact], predicate, geoms)
        return out

    def _side(
        self, cell: np.ndarray, x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Points of single-segment cells answered by their side of the segment.

        Returns which points are answered (the sign of the orientation is
        certain) and their grids (-1 none), in that order.
        """
        assert self._cell_seg is not None and self._seg is not None
        s = self._cell_seg[cell]
        one = np.flatnonzero(s >= 0)
        s = s[one]
        px, py = x[one], y[one]
        a = self._seg[s]
        # Shewchuk's orient2d(a, b, p) with his filter: > 0 when p is left of a→b
        detleft = (a[:, 0] - px) * (a[:, 3] - py)
        detright = (a[:, 1] - py) * (a[:, 2] - px)
        det = detleft - detright
        sure = np.abs(det) > _CCW_ERRBOUND * (np.abs(detleft) + np.abs(detright))
        answered = np.zeros(len(cell), dtype=bool)
        answered[one[sure]] = True
        grid = self._seg_grid[s[sure], (det[sure] < 0).astype(np.int64)]
        return answered, grid


def label_pieces(mask: npt.ArrayLike) -> tuple[np.ndarray, int]:
    """4-connected pieces of a boolean raster: ``scipy.ndimage.label``'s answer in numpy.

    Runs of set cells along each row are the units: two runs of neighbouring
    rows that share a column are joined (union by smallest root with pointer
    jumping, vectorized, O(log n) rounds), then each run's piece number is
    painted back over its cells.

    Written by hand because assigning buildings to grids is core (a read-only
    OGC server imports grids too) and SciPy is only in the ``[analytics]`` and
    ``[patrol]`` extras; ``scipy.ndimage.label`` stays the reference it is
    tested against (``tests/test_optional_extras.py``).

    Parameters
    ----------
    mask : array-like of bool, 2-D
        Cells to group.

    Returns
    -------
    labels : numpy.ndarray of int32
        Same shape as *mask*: 0 outside, ``1..count`` inside, one number per
        piece (numbered by first cell in row-major order).
    count : int
        Number of pieces.

    Examples
    --------
    >>> labels, count = label_pieces([[1, 1, 0, 1], [0, 1, 0, 1], [1, 0, 0, 0]])
    >>> count
    3
    >>> labels.tolist()
    [[1, 1, 0, 2], [0, 1, 0, 2], [3, 0, 0, 0]]
    """
    cells = np.asarray(mask, dtype=bool)
    ny, nx = cells.shape
    padded = np.zeros((ny, nx + 2), dtype=np.int8)
    padded[:, 1:-1] = cells
    step = np.diff(padded, axis=1)
    row, start = np.nonzero(step == 1)  # run starts, row-major order
    _, stop = np.nonzero(step == -1)  # run ends (exclusive), same order
    n = len(start)
    if n == 0:
        return np.zeros((ny, nx), dtype=np.int32), 0
    width = nx + 1
    row0 = row.astype(np.int64) * width
    start_key, stop_key = row0 + start, row0 + stop
    # runs of the next row that share a column with each run: a contiguous range
    below = row0 + width
    lo = np.searchsorted(stop_key, below + start, side="right")
    hi = np.searchsorted(start_key, below + stop, side="left")
    count = np.maximum(hi - lo, 0)
    a = np.repeat(np.arange(n), count)
    b = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
    parent = np.arange(n)
    while True:
        pa, pb = parent[a], parent[b]
        apart = pa != pb
        if not apart.any():
            break
        a, b, pa, pb = a[apart], b[apart], pa[apart], pb[apart]
        # roots only (parent is flat after the jumps below): hook the larger on the smaller
        np.minimum.at(parent, np.maximum(pa, pb), np.minimum(pa, pb))
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    roots, inverse = np.unique(parent, return_inverse=True)
    piece = inverse.ravel().astype(np.int32) + 1  # of each run
    paint = np.zeros(ny * width + 1, dtype=np.int32)
    np.add.at(paint, start_key, piece)
    np.add.at(paint, stop_key, -piece)
    labels = np.cumsum(paint[:-1].reshape(ny, width), axis=1, dtype=np.int32)[:, :nx]
    return np.ascontiguousarray(labels), len(roots)


def locate_in_grids(
    points: npt.ArrayLike,
    grids: npt.ArrayLike,
    *,
    predicate: Predicate = "within",
    cells: int | None = None,
) -> np.ndarray:
    """Position of the grid holding each point (``-1`` none); same answer as ``sjoin``.

    Parameters
    ----------
    points : array-like of shapely Points
        Missing or empty points give ``-1``.
    grids : array-like of shapely (Multi)Polygons
        The grids, same CRS as the points.
    predicate : {"within", "intersects"}
        Boundary rule, see :mod:`gridmap.division.assign`.
    cells : int, optional
        Raster size of the :class:`PointGridIndex`; by default one cell per
        point for a valid coverage, four otherwise, at most about 2,000 per
        grid (the raster costs more to build than it saves when there are few
        points).

    Returns
    -------
    numpy.ndarray of int64
        Aligned to *points*.

    Examples
    --------
    >>> import shapely
    >>> grids = [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)]
    >>> locate_in_grids(shapely.points([[0.5, 0.5], [1, 0.5], [5, 5]]), grids).tolist()
    [0, -1, -1]
    """
    pts = np.asarray(points, dtype=object).ravel()
    xy, owner = shapely.get_coordinates(pts, return_index=True)
    if len(xy) == len(pts) and bool((owner == np.arange(len(pts))).all()):
        # one coordinate each: all points, none missing or empty
        xs, ys = xy[:, 0], xy[:, 1]
    else:
        xs = np.full(len(pts), np.nan)
        ys = np.full(len(pts), np.nan)
        ok = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
        xs[ok] = shapely.get_x(pts[ok])
        ys[ok] = shapely.get_y(pts[ok])
    polys = np.asarray(grids, dtype=object).ravel()
    index = PointGridIndex(polys, cells=cells, points=len(pts))
    return index.query(xs, ys, predicate=predicate, points=pts)
