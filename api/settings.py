"""Service settings, read from ``GRIDMAP_*`` environment variables.

Only the API and the CLI read the environment; tests build :class:`Settings`
explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridmap.common.timezone import DEFAULT_TIME_ZONE, check_time_zone
from gridmap.storage.limits import DEFAULT_STATEMENT_TIMEOUT_MS

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
    time_zone : str
        IANA time zone that reports show times in and read dates without a zone
        in (``GRIDMAP_TIME_ZONE``, default ``Asia/Shanghai``).
    observed_max_age_hours : float
        How old the ``observed_at`` of a report may be (hours); older is refused.
    edge_tolerance_m : float
        The cap of the grid-edge tolerance (metres): a report just outside the
        reporter's grids is accepted within ``min(accuracy_m, edge_tolerance_m)``
        of one of them and routed to the grid that contains the point.
    statement_timeout_ms : int
        How long one database statement of the service may run
        (``GRIDMAP_STATEMENT_TIMEOUT_MS``, default 15000; 0: no limit). PostGIS
        cancels a longer one, the embedded store interrupts it (DuckDB), and
        the request is answered 503 with the reason.
    taxonomy_file : Path, optional
        The event taxonomy (``GRIDMAP_TAXONOMY_FILE``, TOML or JSON; see
        :func:`gridmap.events.taxonomy.load_taxonomy`); the one shipped in the
        package when unset. Checked when the service starts.
    rules_file : Path, optional
        The assessment rules (``GRIDMAP_RULES_FILE``, see
        :func:`gridmap.assessment.rules.load_rules`); the shipped ones when unset.
    log_format : {"text", "json"}
        ``GRIDMAP_LOG_FORMAT``: ``json`` writes every log line (one per request,
        with its request id, route, status and duration) as a JSON object.
    log_level : str
        ``GRIDMAP_LOG_LEVEL`` (``debug``, ``info``, ``warning``, ``error``); ``gridmap
        serve --log-level`` overrides it.

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
    time_zone: str = DEFAULT_TIME_ZONE
    observed_max_age_hours: float = Field(default=72.0, gt=0, allow_inf_nan=False)
    edge_tolerance_m: float = Field(default=50.0, ge=0, allow_inf_nan=False)
    statement_timeout_ms: int = Field(default=DEFAULT_STATEMENT_TIMEOUT_MS, ge=0)
    taxonomy_file: Path | None = None
    rules_file: Path | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_time_zone(value)

    @model_validator(mode="after")
    def _default_within_max(self) -> Settings:
        if self.default_limit > self.max_limit:
            raise ValueError(
                f"default_limit ({self.default_limit}) exceeds max_limit ({self.max_limit})"
            )
        if self.tiles_url and not self.tiles_attribution:
            raise ValueError("tiles_url needs tiles_attribution")
        return self
