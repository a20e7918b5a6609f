"""Who may see what: principals, roles and areas.

Area scoping rides on the national code hierarchy: a town code (9 digits) is
the prefix of its communities' codes (12), which prefix their grids' codes
(15). A principal's area is therefore a set of code prefixes, and every
query a principal makes is narrowed with :class:`gridmap.storage.Prefix` on
the row's ``grid_code`` (or ``code`` / ``community_code``). The PostGIS store
enforces the same rule again with row-level security.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gridmap.common.errors import BadInput
from gridmap.common.model import ROLES

__all__ = ["ALL_AREAS", "SYSTEM", "Principal"]

#: The empty prefix: matches every code.
ALL_AREAS: tuple[str, ...] = ("",)

#: Roles that see personal data (names, phones, IDs) unmasked when also granted unmask.
_DETAIL_ROLES = frozenset({"city_admin", "town_coordinator", "community_staff", "grid_worker"})


@dataclass(frozen=True)
class Principal:
    """A person or system acting on gridmap.

    Parameters
    ----------
    name : str
        Unique user name.
    role : str
        One of :data:`gridmap.common.model.ROLES`.
    areas : tuple of str
        Code prefixes the principal may see: ``("",)`` for the whole city,
        a town code, community codes or grid codes.
    can_unmask : bool
        May ask for personal data unmasked (every unmask is audited).

    Examples
    --------
    >>> p = Principal("wang", "grid_worker", ("990100001001003",))
    >>> p.covers("990100001001003"), p.covers("990100001001004")
    (True, False)
    """

    name: str
    role: str
    areas: tuple[str, ...] = field(default=ALL_AREAS)
    can_unmask: bool = False

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise BadInput(f"unknown role {self.role!r}; roles: {', '.join(ROLES)}", field="role")
        for a in self.areas:
            if not (a == "" or (a.isdigit() and len(a) in (6, 9, 12, 15))):
                raise BadInput(f"area code must have 6, 9, 12 or 15 digits: {a!r}", field="area")

    @property
    def sees_everything(self) -> bool:
        """True when no area restriction applies."""
        return "" in self.areas

    @property
    def sees_personal_data(self) -> bool:
        """Whether this role may see personal fields at all (masked by default)."""
        return self.role in _DETAIL_ROLES

    def covers(self, code: str | None) -> bool:
        """Whether an object with this (grid/community/town) code is in the principal's area."""
        if self.sees_everything:
            return True
        if not code:
            return False
        return any(code.startswith(a) for a in self.areas)


#: The principal of trusted in-process jobs (CLI, demo): full access.
SYSTEM = Principal("system", "city_admin", ALL_AREAS, can_unmask=False)
