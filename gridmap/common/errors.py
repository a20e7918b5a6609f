"""Domain errors. They know nothing of HTTP; ``api/errors.py`` maps them to status codes."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BadGeometry",
    "BadInput",
    "GridmapError",
    "ImportFailed",
    "NotFound",
    "OutsideJurisdiction",
    "UnknownLayer",
    "UnsupportedFormat",
]


class GridmapError(Exception):
    """Base class of every error gridmap raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(GridmapError, ValueError):
    """A value from a user or a file is malformed (names the offending field)."""

    code = "bad_input"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BadGeometry(BadInput):
    """A geometry cannot be used, even after repair."""

    code = "bad_geometry"


class UnknownLayer(GridmapError, KeyError):
    """A layer name that is not in the model."""

    code = "unknown_layer"

    def __init__(self, name: str, known: Sequence[str] = ()) -> None:
        msg = f"unknown layer {name!r}"
        if known:
            msg += f"; known layers: {', '.join(known)}"
        super().__init__(msg)
        self.name = name

    def __str__(self) -> str:
        return self.message


class NotFound(GridmapError, LookupError):
    """A requested object does not exist (or is not visible to the caller)."""

    code = "not_found"


class UnsupportedFormat(BadInput):
    """A file format gridmap cannot read or write."""

    code = "unsupported_format"


class ImportFailed(GridmapError):
    """An import could not complete; the store is left unchanged."""

    code = "import_failed"


class OutsideJurisdiction(BadInput):
    """A location lies outside every admin unit gridmap knows."""

    code = "outside_jurisdiction"
