"""Region building over the unit adjacency graph: contiguous, balanced, compact.

The units (street blocks, see :mod:`gridmap.division.blocks`) are grouped into
regions so that every region is connected, its weight lies within
``[low, high]`` and, among such groupings, weights are close to the target and
boundaries short. Three steps, per connected part of the graph:

1. **count**: ``k = round(W / target)`` clamped to ``[ceil(W / high), floor(W / low)]``;
2. **seeded growth**: k seeds from a weighted k-means of the unit centres; the
   lightest region repeatedly takes its nearest free neighbouring unit, so
   regions stay connected and grow evenly;
3. **local search**: boundary units move to a neighbouring region whenever that
   lowers ``Σ ((W_r − T)/T)² + P · Σ (violation_r / T)² + λ · cut length / L``
   and leaves the donor connected. Violations dominate (P = 1000), then balance,
   then compactness (λ).

Everything is deterministic: the same input gives the same regions.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Limits",
    "build_regions",
    "components",
    "improve_regions",
    "region_count",
    "repair_regions",
    "warm_labels",
]

_PENALTY = 1000.0


@dataclass(frozen=True)
class Limits:
    """Bounds of a region's weight and the target in between.

    Examples
    --------
    >>> Limits(300, 200, 500).violation(520.0)
    20.0
    """

    target: float
    low: float
    high: float

    def violation(self, w: float) -> float:
        """How far *w* lies outside ``[low, high]`` (0 inside)."""
        return max(0.0, self.low - w) + max(0.0, w - self.high)

    def cost(self, w: float) -> float:
        """Balance cost of a region of weight *w* (violations weigh 1000×)."""
        d = (w - self.target) / self.target
        v = self.violation(w) / self.target
        return d * d + _PENALTY * v * v


def components(neighbours: list[dict[int, float]]) -> list[np.ndarray]:
    """Connected parts of the unit graph, each as a sorted index array.

    Examples
    --------
    >>> [c.tolist() for c in components([{1: 1.0}, {0: 1.0}, {}])]
    [[0, 1], [2]]
    """
    seen = np.zeros(len(neighbours), dtype=bool)
    out: list[np.ndarray] = []
    for s in range(len(neighbours)):
        if seen[s]:
            continue
        seen[s] = True
        queue, comp = [s], [s]
        while queue:
            u = queue.pop()
            for v in neighbours[u]:
                if not seen[v]:
                    seen[v] = True
                    queue.append(v)
                    comp.append(v)
        out.append(np.array(sorted(comp), dtype=int))
    return out


def region_count(total: float, limits: Limits) -> tuple[int, bool]:
    """Number of regions for *total* weight and whether the limits can all be met.

    Examples
    --------
    >>> region_count(6765, Limits(300, 200, 500))
    (23, True)
    >>> region_count(120, Limits(300, 200, 500))
    (1, False)
    """
    if total <= 0:
        return 1, total >= limits.low
    lo = int(np.ceil(total / limits.high - 1e-9))
    hi = int(np.floor(total / limits.low + 1e-9))
    k = round(total / limits.target)
    if lo <= hi:
        return max(1, min(max(k, lo), hi)), True
    return max(1, lo), False


def _kmeans_seeds(xy: np.ndarray, w: np.ndarray, k: int, iters: int = 12) -> np.ndarray:
    """Indices (into *xy*) of k distinct seed units from a weighted k-means."""
    n = len(xy)
    if k >= n:
        return np.arange(n)
    ww = np.where(w > 0, w, 0.0)
    if ww.sum() <= 0:
        ww = np.ones(n)
    rng = np.random.default_rng(20260101)
    centres = [xy[int(np.argmax(ww))]]
    # distance to the nearest centre so far, updated per new centre (k-means++)
    d2 = ((xy - centres[0]) ** 2).sum(-1)
    for _ in range(1, k):
        p = ww * d2
        if p.sum() <= 0:
            p = d2 + 1e-12
        centres.append(xy[int(rng.choice(n, p=p / p.sum()))])
        d2 = np.minimum(d2, ((xy - centres[-1]) ** 2).sum(-1))
    c = np.array(centres)
    for _ in range(iters):
        lab = np.argmin(((xy[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        for j in range(k):
            m = (lab == j) & (ww > 0)
            if m.any():
                c[j] = np.average(xy[m], axis=0, weights=ww[m])
    seeds: list[int] = []
    taken = np.zeros(n, dtype=bool)
    for j in range(k):
        d = ((xy - c[j]) ** 2).sum(-1) + np.where(taken, np.inf, 0.0) + np.where(w > 0, 0.0, 1e12)
        s = int(np.argmin(d))
        taken[s] = True
        seeds.append(s)
    return np.array(seeds, dtype=int)


def _grow(
    comp: np.ndarray,
    seeds: np.ndarray,
    neighbours: list[dict[int, float]],
    w: np.ndarray,
    xy: np.ndarray,
) -> dict[int, int]:
    """Grow regions from *seeds* (unit ids), lightest region first; unit → region."""
    lab: dict[int, int] = {}
    weight = np.zeros(len(seeds))
    frontier: list[list[tuple[float, int]]] = [[] for _ in seeds]
    for r, s in enumerate(seeds.tolist()):
        lab[s] = r
        weight[r] = w[s]
    for r, s in enumerate(seeds.tolist()):
        for v in neighbours[s]:
            if v not in lab:
                heapq.heappush(frontier[r], (float(((xy[v] - xy[s]) ** 2).sum()), v))
    order = [(float(weight[r]), r) for r in range(len(seeds))]
    heapq.heapify(order)
    while order:
        _, r = heapq.heappop(order)
        while frontier[r] and frontier[r][0][1] in lab:
            heapq.heappop(frontier[r])
        if not frontier[r]:
            continue
        _, u = heapq.heappop(frontier[r])
        lab[u] = r
        weight[r] += w[u]
        s = int(seeds[r])
        for v in neighbours[u]:
            if v not in lab:
                heapq.heappush(frontier[r], (float(((xy[v] - xy[s]) ** 2).sum()), v))
        heapq.heappush(order, (float(weight[r]), r))
    return lab


def improve_regions(
    labels: np.ndarray,
    neighbours: list[dict[int, float]],
    w: np.ndarray,
    limits: Limits,
    *,
    compactness: float = 0.05,
    scale: float = 1.0,
    movable: np.ndarray | None = None,
    balance: bool = True,
) -> np.ndarray:
    """Local search: move boundary units between regions while the cost drops.

    Parameters
    ----------
    labels : numpy.ndarray
        Region of each unit (``-1``: not part of the search).
    neighbours : list of dict
        Unit adjacency with shared boundary lengths.
    w : numpy.ndarray
        Unit weights.
    limits : Limits
        Target and bounds.
    compactness : float
        Weight λ of the boundary length (in units of *scale*).
    scale : float
        Typical region side length (metres) normalising the boundary length.
    movable : numpy.ndarray of bool, optional
        Regions allowed to change (all by default).
    balance : bool
        Include the distance to the target in the cost; when False only
        violations (and compactness, to break ties) count, so regions within
        the limits stay as they are.

    Returns
    -------
    numpy.ndarray
        New labels (a copy).

    Examples
    --------
    >>> import numpy as np
    >>> nb = [{1: 1.0}, {0: 1.0, 2: 1.0}, {1: 1.0, 3: 1.0}, {2: 1.0}]
    >>> improve_regions(np.array([0, 0, 0, 1]), nb, np.array([100.0] * 4),
    ...                 Limits(200, 150, 250)).tolist()
    [0, 0, 1, 1]
    """
    search = _LocalSearch(labels.copy(), neighbours, w, limits, balance=balance)
    search.lam = compactness / max(scale, 1e-9)
    if movable is not None:
        search.may = movable.astype(bool)
    for _ in range(_MAX_PASSES):
        if search.sweep() == 0:
            break
    return search.lab


#: Upper bound on the local search's sweeps over the boundary units.
_MAX_PASSES = 60


class _LocalSearch:
    """The state of :func:`improve_regions`: labels, members and weights per region."""

    def __init__(
        self,
        lab: np.ndarray,
        neighbours: list[dict[int, float]],
        w: np.ndarray,
        limits: Limits,
        *,
        balance: bool,
    ) -> None:
        self.lab = lab
        self.neighbours = neighbours
        self.w = w
        self.limits = limits
        self.balance = balance
        n_reg = int(lab.max()) + 1 if len(lab) else 0
        self.reg_w = np.bincount(lab[lab >= 0], weights=w[lab >= 0], minlength=n_reg)
        self.members: list[set[int]] = [set() for _ in range(n_reg)]
        for u, r in enumerate(lab.tolist()):
            if r >= 0:
                self.members[r].add(u)
        self.may = np.ones(n_reg, dtype=bool)
        self.lam = 0.0

    def cost(self, x: float) -> float:
        if self.balance:
            return self.limits.cost(x)
        v = self.limits.violation(x) / self.limits.target
        return _PENALTY * v * v

    def stays_connected(self, u: int, a: int) -> bool:
        """Whether region *a* stays connected without unit *u*."""
        inside = [v for v in self.neighbours[u] if self.lab[v] == a]
        if len(inside) <= 1:
            return True
        rest = self.members[a] - {u}
        start = inside[0]
        seen = {start}
        queue = deque([start])
        targets = set(inside)
        while queue:
            x = queue.popleft()
            for y in self.neighbours[x]:
                if y in rest and y not in seen:
                    seen.add(y)
                    queue.append(y)
            if targets <= seen:
                return True
        return targets <= seen

    def shared(self, u: int) -> dict[int, float]:
        """Boundary length of unit *u* shared with each region."""
        out: dict[int, float] = {}
        for v, length in self.neighbours[u].items():
            b = int(self.lab[v])
            if b >= 0:
                out[b] = out.get(b, 0.0) + length
        return out

    def best_move(self, u: int, a: int, shared: dict[int, float]) -> int:
        """The region unit *u* (of region *a*) is best moved to, or -1 for none."""
        own = shared.get(a, 0.0)
        wu = float(self.w[u])
        base_a = self.cost(self.reg_w[a]) - self.cost(self.reg_w[a] - wu)
        best, best_b = -1e-12, -1
        for b, length in shared.items():
            if b == a or not self.may[b]:
                continue
            gain = -base_a + self.cost(self.reg_w[b] + wu) - self.cost(self.reg_w[b])
            if not self.balance and gain >= -1e-12:
                continue  # only violations may move units; compactness breaks ties
            delta = gain + self.lam * (own - length)
            if delta < best:
                best, best_b = delta, b
        return best_b

    def move(self, u: int, a: int, b: int) -> None:
        wu = float(self.w[u])
        self.lab[u] = b
        self.members[a].discard(u)
        self.members[b].add(u)
        self.reg_w[a] -= wu
        self.reg_w[b] += wu

    def sweep(self) -> int:
        """One pass over the units; how many moved."""
        moved = 0
        for u in range(len(self.lab)):
            a = int(self.lab[u])
            if a < 0 or not self.may[a] or len(self.members[a]) <= 1:
                continue
            shared = self.shared(u)
            if len(shared) <= 1 and a in shared:
                continue
            b = self.best_move(u, a, shared)
            if b < 0 or not self.stays_connected(u, a):
                continue
            self.move(u, a, b)
            moved += 1
        return moved


def relabel(lab: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..k-1 in order of first appearance (-1 kept)."""
    out = lab.copy()
    mapping: dict[int, int] = {}
    for i, r in enumerate(lab.tolist()):
        if r < 0:
            continue
        if r not in mapping:
            mapping[r] = len(mapping)
        out[i] = mapping[r]
    return out


def region_neighbours(lab: np.ndarray, neighbours: list[dict[int, float]], r: int) -> set[int]:
    return {int(lab[v]) for u in np.flatnonzero(lab == r) for v in neighbours[u]} - {r, -1}


def _split_two(
    units: np.ndarray,
    neighbours: list[dict[int, float]],
    w: np.ndarray,
    xy: np.ndarray,
    limits: Limits,
    n: int,
) -> np.ndarray | None:
    """Best split of a connected unit set in two connected, balanced parts (mask)."""
    if len(units) < 2:
        return None
    sub = xy[units]
    centre = np.average(sub, axis=0, weights=np.maximum(w[units], 1e-9))
    cov = np.cov((sub - centre).T, aweights=np.maximum(w[units], 1e-9)) if len(units) > 2 else None
    axis = np.linalg.eigh(cov)[1][:, -1] if cov is not None and np.all(np.isfinite(cov)) else None
    proj = (sub - centre) @ axis if axis is not None else sub[:, 0] - centre[0]
    seeds = np.array([units[int(np.argmin(proj))], units[int(np.argmax(proj))]])
    if seeds[0] == seeds[1]:
        return None
    mask = np.zeros(n, dtype=bool)
    mask[units] = True
    local = [
        {v: s for v, s in neighbours[u].items() if mask[v]} if mask[u] else {} for u in range(n)
    ]
    grown = _grow(units, seeds, local, w, xy)
    lab = np.full(n, -1, dtype=int)
    for u, r in grown.items():
        lab[u] = r
    if (lab[units] < 0).any():
        return None
    half = Limits(float(w[units].sum()) / 2.0, limits.low, limits.high)
    lab = improve_regions(lab, local, w, half, compactness=0.0)
    part = lab[units] == 0
    if part.all() or not part.any():
        return None
    return np.asarray(part, dtype=bool)


def repair_regions(
    labels: np.ndarray,
    neighbours: list[dict[int, float]],
    w: np.ndarray,
    xy: np.ndarray,
    limits: Limits,
    *,
    rounds: int = 50,
) -> np.ndarray:
    """Fix regions outside the limits by merging with or re-splitting against a neighbour.

    An under-weight region is merged with its lightest neighbour when the two fit
    under ``high``, otherwise the pair is re-split into two balanced halves; an
    over-weight region is split in two (or, when too light to give two regions
    of at least ``low``, re-split together with its lightest neighbour).

    Returns
    -------
    numpy.ndarray
        New labels, renumbered ``0..k-1``.
    """
    lab = labels.copy()
    n = len(w)
    tried: set[tuple[int, ...]] = set()
    for _ in range(rounds):
        k = int(lab.max()) + 1
        reg_w = np.bincount(lab[lab >= 0], weights=w[lab >= 0], minlength=k)
        bad = [r for r in range(k) if limits.violation(float(reg_w[r])) > 0]
        bad.sort(key=lambda r: -limits.violation(float(reg_w[r])))
        changed = False
        for r in bad:
            units = np.flatnonzero(lab == r)
            near = sorted(region_neighbours(lab, neighbours, r), key=lambda q: reg_w[q])
            if reg_w[r] > limits.high and reg_w[r] >= 2 * limits.low:
                part = _split_two(units, neighbours, w, xy, limits, n)
                key = (r, -1, len(units))
                if part is not None and key not in tried:
                    tried.add(key)
                    lab[units[~part]] = k
                    changed = True
                    break
            for q in near if reg_w[r] < limits.low else near[:3]:
                both = float(reg_w[r] + reg_w[q])
                key = (min(r, q), max(r, q), int(both))
                if key in tried:
                    continue
                tried.add(key)
                if reg_w[r] < limits.low and both <= limits.high:
                    lab[units] = q
                    changed = True
                    break
                if both >= 2 * limits.low:
                    pair = np.flatnonzero((lab == r) | (lab == q))
                    part = _split_two(pair, neighbours, w, xy, limits, n)
                    if part is None:
                        continue
                    wa = float(w[pair[part]].sum())
                    if limits.violation(wa) + limits.violation(both - wa) >= limits.violation(
                        float(reg_w[r])
                    ) + limits.violation(float(reg_w[q])):
                        continue
                    lab[pair[part]] = r
                    lab[pair[~part]] = q
                    changed = True
                    break
            if changed:
                break
        if not changed:
            break
        lab = relabel(lab)
    return relabel(lab)


def warm_labels(initial: np.ndarray, neighbours: list[dict[int, float]]) -> np.ndarray:
    """Make starting labels usable: connected regions, every unit labelled.

    A label whose units fall apart keeps its largest piece; the other pieces
    become regions of their own. Unlabelled units (``-1``) join the labelled
    neighbour reached first in a breadth-first sweep (or form a region when
    a whole connected part is unlabelled).

    Examples
    --------
    >>> import numpy as np
    >>> nb = [{1: 1.0}, {0: 1.0, 2: 1.0}, {1: 1.0}, {}]
    >>> warm_labels(np.array([0, -1, 0, -1]), nb).tolist()
    [0, 0, 0, 1]
    """
    lab = initial.astype(int).copy()
    _grow_labels(lab, neighbours)
    nxt = int(lab.max()) + 1 if len(lab) else 0
    for u in np.flatnonzero(lab < 0).tolist():
        if lab[u] >= 0:
            continue
        lab[_flood(u, neighbours, lambda v: bool(lab[v] < 0))] = nxt
        nxt += 1
    for r in range(int(lab.max()) + 1 if len(lab) else 0):
        for piece in _pieces(np.flatnonzero(lab == r), neighbours)[1:]:
            lab[piece] = nxt
            nxt += 1
    return relabel(lab)


def _grow_labels(lab: np.ndarray, neighbours: list[dict[int, float]]) -> None:
    """Unlabelled units take the label of the labelled neighbour reached first (in place)."""
    queue = deque(int(u) for u in np.flatnonzero(lab >= 0))
    while queue:
        u = queue.popleft()
        for v in neighbours[u]:
            if lab[v] < 0:
                lab[v] = lab[u]
                queue.append(v)


def _flood(
    start: int, neighbours: list[dict[int, float]], allowed: Callable[[int], bool]
) -> list[int]:
    """Units reached from *start* through allowed units (*start* included)."""
    seen, piece, stack = {start}, [start], [start]
    while stack:
        x = stack.pop()
        for v in neighbours[x]:
            if v not in seen and allowed(v):
                seen.add(v)
                piece.append(v)
                stack.append(v)
    return piece


def _pieces(units: np.ndarray, neighbours: list[dict[int, float]]) -> list[list[int]]:
    """The connected pieces of a set of units, largest first."""
    if len(units) <= 1:
        return []
    inside = set(units.tolist())
    pieces: list[list[int]] = []
    seen: set[int] = set()
    for s in units.tolist():
        if s in seen:
            continue
        piece = _flood(s, neighbours, inside.__contains__)
        seen.update(piece)
        pieces.append(piece)
    pieces.sort(key=len, reverse=True)
    return pieces


def build_regions(
    neighbours: list[dict[int, float]],
    w: np.ndarray,
    xy: np.ndarray,
    area: np.ndarray,
    limits: Limits,
    *,
    compactness: float = 0.05,
    initial: np.ndarray | None = None,
) -> np.ndarray:
    """Group units into contiguous regions within *limits*; region label per unit.

    Parameters
    ----------
    neighbours : list of dict
        Unit adjacency with shared boundary lengths (metres).
    w : numpy.ndarray
        Unit weights.
    xy : numpy.ndarray
        ``(n, 2)`` unit centres in metres.
    area : numpy.ndarray
        Unit areas (square metres).
    limits : Limits
        Target and bounds of a region's weight.
    compactness : float
        Preference for short boundaries (0 = balance only).
    initial : numpy.ndarray, optional
        Start from these labels (e.g. the grids in force) instead of seeding:
        a re-division then changes only what it must, and codes stay stable.

    Returns
    -------
    numpy.ndarray
        Region label of each unit, ``0..k-1``; each connected part of the graph
        gets its own regions.

    Examples
    --------
    >>> import numpy as np
    >>> nb = [{1: 1.0}, {0: 1.0, 2: 1.0}, {1: 1.0, 3: 1.0}, {2: 1.0}]
    >>> xy = np.array([[0.0, 0], [1, 0], [2, 0], [3, 0]])
    >>> build_regions(nb, np.full(4, 100.0), xy, np.ones(4), Limits(200, 150, 250)).tolist()
    [0, 0, 1, 1]
    """
    n = len(w)
    if initial is not None:
        labels = warm_labels(initial, neighbours)
        next_label = int(labels.max()) + 1
    else:
        labels = np.full(n, -1, dtype=int)
        next_label = 0
    for comp in components(neighbours) if initial is None else []:
        total = float(w[comp].sum())
        k, _ = region_count(total, limits)
        k = min(k, int((w[comp] > 0).sum()) or 1)
        if k <= 1:
            labels[comp] = next_label
            next_label += 1
            continue
        seeds = comp[_kmeans_seeds(xy[comp], w[comp], k)]
        grown = _grow(comp, seeds, neighbours, w, xy)
        for u, r in grown.items():
            labels[u] = next_label + r
        next_label += k
    side = float(np.sqrt(max(area.sum(), 1.0) / max(next_label, 1)))
    labels = improve_regions(labels, neighbours, w, limits, compactness=compactness, scale=side)
    reg_w = np.bincount(labels, weights=w)
    if any(limits.violation(float(x)) > 0 for x in reg_w):
        labels = repair_regions(labels, neighbours, w, xy, limits)
        labels = improve_regions(labels, neighbours, w, limits, compactness=compactness, scale=side)
    return relabel(labels)
