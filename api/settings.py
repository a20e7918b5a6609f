"""Service settings, read from ``GRIDMAP_*`` environment variables.

Only the API and the CLI read the environment; tests build :class:`Settings`
explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Settings of the HTTP service.

    Parameters
    ----------
    database_url : str
        Store to serve (``postgresql://…``, ``duckdb:///path`` or a path).
    max_limit : int
        Largest page size; a larger ``limit`` is clamped to it.
    default_limit : int
        Page size when a request names no ``limit``.
    assets_dir : Path, optional
        Folder of the map assets (Leaflet and plugins); the layers package's
        own folder when unset.
    media_dir : Path
        Where uploaded event photos are stored (EXIF stripped).
    max_photo_bytes : int
        Largest accepted photo upload.
    cors_origins : list of str
        Origins allowed to call the API from a browser (none by default).
    max_body_bytes : int
        Largest request body accepted; larger ones get 413.
    tiles_url : str, optional
        XYZ URL template of a basemap for the map pages (e.g. an intranet 天地图 or
        Gaode server); none by default (the imported roads and buildings suffice).
    tiles_attribution : str, optional
        Attribution of that basemap (required with ``tiles_url``).
    basemap_crs : {"wgs84", "gcj02"}
        Coordinates of the basemap; ``gcj02`` shifts the map overlays to match.

    Examples
    --------
    >>> Settings(database_url=":memory:", max_limit=500).max_limit
    500
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", extra="ignore")

    database_url: str = "./gridmap.duckdb"
    max_limit: int = Field(default=10_000, ge=1)
    default_limit: int = Field(default=100, ge=1)
    assets_dir: Path | None = None
    media_dir: Path = Path("media")
    max_photo_bytes: int = Field(default=10_000_000, ge=1)
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=10_000_000, ge=0)
    tiles_url: str | None = None
    tiles_attribution: str | None = None
    basemap_crs: Literal["wgs84", "gcj02"] = "wgs84"

    @model_validator(mode="after")
    def _default_within_max(self) -> Settings:
        if self.default_limit > self.max_limit:
            raise ValueError(
                f"default_limit ({self.default_limit}) exceeds max_limit ({self.max_limit})"
            )
        if self.tiles_url and not self.tiles_attribution:
            raise ValueError("tiles_url needs tiles_attribution")
        return self
