"""Optional extras of the ``gridmap`` distribution and the error naming a missing one.

Heavy packages that only some features need are not installed by a plain
``pip install gridmap``; they come with an *extra*, e.g.
``pip install 'gridmap[patrol]'``. The modules that use them import them lazily
(inside the function that needs them), so the rest of gridmap works without
them: :func:`require` imports one and raises :class:`MissingExtra` (one line
naming the extra to install) when it is absent; :class:`LazyModule` stands for
such a module at the top of a module and imports it through ``require`` on
first use (type checkers see the real module in a ``TYPE_CHECKING`` branch).
Where a plain lazy import fails instead, the CLI and the API turn the ``ModuleNotFoundError`` into
:class:`MissingExtra` with :func:`missing_extra`.

Packages that several extras bring (``scipy``: ``patrol`` and ``analytics``)
are named by the feature that asks for them, through ``require``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType, ModuleType
from typing import Any

from gridmap.common.errors import GridmapError

__all__ = ["EXTRAS", "MODULE_EXTRA", "LazyModule", "MissingExtra", "missing_extra", "require"]

#: Extra → what it enables (English, zh-CN) and the top-level modules it installs.
EXTRAS: Mapping[str, tuple[str, str, tuple[str, ...]]] = MappingProxyType(
    {
        "patrol": (
            "patrol route planning",
            "巡查路线规划",
            ("ortools", "pymatching", "networkx"),
        ),
        "batch": (
            "batch analytics with dask",
            "批量分析",
            ("dask", "distributed", "dask_geopandas"),
        ),
        "analytics": (
            "hot-spot statistics (PySAL) and density surfaces",
            "热点统计分析",
            ("esda", "libpysal"),
        ),
        "pdf": ("PDF reports", "PDF 报告", ("fpdf",)),
        "postgis": ("the PostGIS store", "PostGIS 数据库", ("psycopg", "psycopg_pool", "pgpq")),
        "osm": ("OpenStreetMap import and the demo", "OSM 数据导入与演示", ("pyrosm",)),
    }
)

#: Top-level module name → the extra that installs it.
MODULE_EXTRA: Mapping[str, str] = MappingProxyType(
    {module: extra for extra, (_, _, modules) in EXTRAS.items() for module in modules}
)


class MissingExtra(GridmapError):
    """A feature needs packages of an optional extra that is not installed.

    Parameters
    ----------
    extra : str
        Name of the extra, e.g. ``"patrol"``.
    module : str
        The module that could not be imported.
    """

    code = "missing_extra"

    def __init__(self, extra: str, module: str) -> None:
        what, what_zh, _ = EXTRAS[extra]
        super().__init__(
            f"{what} needs the optional package {module!r}, which is not installed: "
            f"pip install 'gridmap[{extra}]' "
            f"({what_zh}需要安装可选依赖 gridmap[{extra}])"
        )
        self.extra = extra
        self.module = module


def missing_extra(exc: BaseException) -> MissingExtra | None:
    """The :class:`MissingExtra` behind an import error, or ``None`` if it is another error.

    Parameters
    ----------
    exc : BaseException
        Typically a ``ModuleNotFoundError`` raised by a lazy import.

    Returns
    -------
    MissingExtra or None
        The error naming the extra, when *exc* failed to import a module of one.

    Examples
    --------
    >>> err = missing_extra(ModuleNotFoundError("No module named 'ortools'", name="ortools"))
    >>> err.extra
    'patrol'
    >>> "pip install 'gridmap[patrol]'" in err.message
    True
    >>> missing_extra(ModuleNotFoundError("No module named 'nope'", name="nope")) is None
    True
    >>> missing_extra(ValueError("x")) is None
    True
    """
    if isinstance(exc, MissingExtra):
        return exc
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".", 1)[0]
    extra = MODULE_EXTRA.get(top)
    return MissingExtra(extra, exc.name) if extra is not None else None


def require(module: str, *, extra: str) -> ModuleType:
    """Import *module* of an optional *extra*, or raise :class:`MissingExtra` naming it.

    The one way gridmap imports a package of an extra inside the function that
    needs it, so that ``pip install gridmap`` without extras imports and serves.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"scipy.sparse.csgraph"``.
    extra : str
        The extra that installs it (a key of :data:`EXTRAS`).

    Returns
    -------
    types.ModuleType
        The imported module.

    Raises
    ------
    MissingExtra
        When the package of *module* is not installed (another import error
        inside an installed package propagates unchanged).

    Examples
    --------
    >>> require("json", extra="patrol").__name__
    'json'
    >>> try:  # a package that is not installed
    ...     require("not_installed_here.solver", extra="patrol")
    ... except MissingExtra as exc:
    ...     print(exc.extra, "pip install 'gridmap[patrol]'" in exc.message)
    patrol True
    """
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".", 1)[0]
        if exc.name is None or exc.name.split(".", 1)[0] != top:
            raise  # something the installed package itself needs
        raise MissingExtra(extra, top) from exc


class LazyModule:
    """A module of an optional extra, imported through :func:`require` on first use.

    Lets a module keep ``nx.MultiGraph()`` or ``csgraph.dijkstra(...)`` in its
    functions while importing without the extra; the first attribute access
    imports the package or raises :class:`MissingExtra`.

    Parameters
    ----------
    module : str
        Dotted module name.
    extra : str
        The extra that installs it.

    Examples
    --------
    >>> json = LazyModule("json", extra="patrol")
    >>> json.dumps([1])
    '[1]'
    """

    def __init__(self, module: str, *, extra: str) -> None:
        if extra not in EXTRAS:
            raise KeyError(f"unknown extra {extra!r}")
        self._module = module
        self._extra = extra

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and doctest probe dunders: no import
            raise AttributeError(name)
        return getattr(require(self._module, extra=self._extra), name)

    def __repr__(self) -> str:
        return f"<lazy module {self._module!r} of gridmap[{self._extra}]>"
