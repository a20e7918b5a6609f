"""Optional extras of the ``gridmap`` distribution and the error naming a missing one.

Heavy packages that only some features need are not installed by a plain
``pip install gridmap``; they come with an *extra*, e.g.
``pip install 'gridmap[patrol]'``. The modules that use them import them lazily
(inside the function that needs them), so the rest of gridmap works without
them. When such an import fails, the CLI and the API turn the
``ModuleNotFoundError`` into :class:`MissingExtra` with :func:`missing_extra`:
one line naming the extra to install.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gridmap.errors import GridmapError

__all__ = ["EXTRAS", "MODULE_EXTRA", "MissingExtra", "missing_extra"]

#: Extra → what it enables (English, zh-CN) and the top-level modules it installs.
EXTRAS: Mapping[str, tuple[str, str, tuple[str, ...]]] = MappingProxyType(
    {
        "patrol": (
            "patrol route planning",
            "巡查路线规划",
            ("ortools", "pymatching"),
        ),
        "batch": (
            "batch analytics with dask",
            "批量分析",
            ("dask", "distributed", "dask_geopandas"),
        ),
        "analytics": ("hot-spot statistics (PySAL)", "热点统计分析", ("esda", "libpysal")),
        "pdf": ("PDF reports", "PDF 报告", ("fpdf",)),
        "postgis": ("the PostGIS store", "PostGIS 数据库", ("psycopg", "psycopg_pool", "pgpq")),
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
