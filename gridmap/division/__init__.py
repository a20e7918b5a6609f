"""Grid division (网格划分): street-following balanced grids, lattices, codes, topology.

* :func:`divide_balanced` — contiguous grids of about the target households,
  along streets, never cutting a building (``--method balanced``);
* :func:`divide_h3`, :func:`divide_square` — regular grids clipped to the community;
* :func:`stable_codes`, :func:`grids_valid_at` — codes that survive a re-division,
  and history;
* :func:`check_topology`, :func:`fix_topology` — gaps, overlaps, slivers,
  crossings, cut buildings;
* :func:`rebalance_division` — change only grids outside the limits;
* :mod:`gridmap.division.service` — the same over a store, with history.
"""

from gridmap.division.balanced import (
    WEIGHTS,
    Division,
    GridSize,
    check_limits,
    divide_balanced,
)
from gridmap.division.blocks import street_blocks, street_units
from gridmap.division.codes import grids_valid_at, match_grids, stable_codes
from gridmap.division.lattice import divide_h3, divide_square
from gridmap.division.rebalance import rebalance_division
from gridmap.division.regions import Limits
from gridmap.division.topology import PROBLEMS, check_topology, fix_topology

__all__ = [
    "PROBLEMS",
    "WEIGHTS",
    "Division",
    "GridSize",
    "Limits",
    "check_limits",
    "check_topology",
    "divide_balanced",
    "divide_h3",
    "divide_square",
    "fix_topology",
    "grids_valid_at",
    "match_grids",
    "rebalance_division",
    "stable_codes",
    "street_blocks",
    "street_units",
]
