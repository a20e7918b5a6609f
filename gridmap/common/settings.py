"""The one settings tree: every ``GRIDMAP_*`` environment variable is read here.

:class:`Settings` is the root; the service (``api.main.create_app``) and the
CLI (``gridmap.cli.common``) both build it, and the API hands it to routers
through one FastAPI dependency (``api.deps.get_settings``, overridable in
tests with ``app.dependency_overrides``). Nothing else in ``gridmap``,
``api`` or ``layers`` reads the environment (a test greps for it).

The tree::

    Settings                  the HTTP service: limits, CORS, body size, logs,
    │                         time zone, intake checks, taxonomy file
    ├── store     StoreSettings     GRIDMAP_DATABASE_URL, GRIDMAP_STATEMENT_TIMEOUT_MS
    ├── security  SecuritySettings  secrets, environment, tokens, rates, CSP, HSTS
    ├── privacy   PrivacySettings   GRIDMAP_PRIVACY_MIN_COUNT (small counts hidden)
    ├── media     MediaSettings     GRIDMAP_MEDIA_DIR, GRIDMAP_MAX_PHOTO_BYTES
    ├── maps      MapSettings       assets folder, basemap URL, attribution and CRS
    ├── webhooks  WebhookSettings   GRIDMAP_WEBHOOK_*
    ├── open311   Open311Settings   GRIDMAP_OPEN311_*
    ├── reports   ReportSettings    GRIDMAP_RULES_FILE, GRIDMAP_PDF_FONT
    └── tools     ToolSettings      GRIDMAP_PG_BIN, GRIDMAP_DASK_SCHEDULER

Why each section is its own ``BaseSettings`` built by ``default_factory``
(rather than nested models with ``env_nested_delimiter`` or a
``validation_alias`` per field): the environment variables are a public
contract (README, "Configuration") and stay flat — ``GRIDMAP_SECRET_KEY``,
with no section name and no delimiter in it — with no alias to keep in step
with each field name; the variable of a field is always ``env_prefix + FIELD`` in upper
case, so it can be derived (:meth:`Section.variable`) for error messages and
the README check. A section also stands alone: code that needs one part
(``ToolSettings().pg_bin``, ``ReportSettings().pdf_font``) builds just that
part, and tests build a tree explicitly, e.g.
``Settings(store=StoreSettings(database_url=":memory:"))``; sections not
given are read from the environment.

Validation errors name the environment variable (``GRIDMAP_MAX_LIMIT``, not
``max_limit``), and never echo a secret.

Examples
--------
>>> s = Settings(store=StoreSettings(database_url=":memory:"), max_limit=500)
>>> s.max_limit, s.store.database_url
(500, ':memory:')
>>> StoreSettings.variable("database_url")
'GRIDMAP_DATABASE_URL'
>>> PrivacySettings(min_count=5).min_count
5
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridmap.common.timezone import DEFAULT_TIME_ZONE, check_time_zone

if TYPE_CHECKING:
    from gridmap.events.webhooks import DeliveryOptions
    from gridmap.security.auth import TokenConfig

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_MIN_COUNT",
    "DEFAULT_PG_BIN",
    "DEFAULT_STATEMENT_TIMEOUT_MS",
    "DEV_DATA_KEY",
    "DEV_SECRET_KEY",
    "MapSettings",
    "MediaSettings",
    "Open311Settings",
    "PrivacySettings",
    "ReportSettings",
    "Section",
    "SecuritySettings",
    "Settings",
    "StoreSettings",
    "ToolSettings",
    "WebhookSettings",
]

#: The embedded store a fresh checkout uses (``GRIDMAP_DATABASE_URL`` unset).
DEFAULT_DATABASE_URL = "./gridmap.duckdb"
#: How long one database statement of the service may run, in milliseconds.
DEFAULT_STATEMENT_TIMEOUT_MS = 15_000
#: Smallest count shown where small counts are protected (heat maps, KPIs, reports);
#: the one default, imported by the small-count rule (:mod:`gridmap.analytics.smallcounts`).
DEFAULT_MIN_COUNT = 3
#: Debian's PostgreSQL programs (``postgresql-15``).
DEFAULT_PG_BIN = Path("/usr/lib/postgresql/15/bin")

#: Built-in secrets: fine on a developer's machine, refused anywhere else.
DEV_SECRET_KEY = "gridmap-development-secret-key-do-not-use-in-production"
DEV_DATA_KEY = "gridmap-development-data-key-do-not-use-in-production"
_WEAK = frozenset({"", "secret", "changeme", "change-me", "password", DEV_SECRET_KEY, DEV_DATA_KEY})

#: Least estimated entropy (bits) and distinct characters of a production secret.
_MIN_BITS, _MIN_DISTINCT = 96.0, 10

_REDACTED = "[redacted]"


class Section(BaseSettings):
    """A part of the tree: ``GRIDMAP_*`` variables, errors naming the variable.

    A failed validation raises :class:`pydantic.ValidationError` as usual, with
    each error's location the environment variable (``GRIDMAP_MAX_LIMIT``)
    instead of the field name; the input of a secret, or of a check over
    several fields, is not repeated in the message.
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", extra="ignore")

    #: Fields whose values never appear in an error message.
    _secret_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise self._named(exc) from None

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of *field* (``env_prefix`` + name, upper case)."""
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @classmethod
    def variables(cls) -> list[str]:
        """Every environment variable of this section (not of the sections below it)."""
        return [
            cls.variable(name)
            for name, info in cls.model_fields.items()
            if not (isinstance(info.annotation, type) and issubclass(info.annotation, Section))
        ]

    @classmethod
    def _named(cls, exc: ValidationError) -> ValidationError:
        details: list[Any] = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            secret = not loc or str(loc[0]) in cls._secret_fields
            if loc and str(loc[0]) in cls.model_fields:
                loc = (cls.variable(str(loc[0])), *loc[1:])
            detail: dict[str, Any] = {
                "type": error["type"],
                "loc": loc,
                "input": _REDACTED if secret else error["input"],
            }
            if "ctx" in error:
                detail["ctx"] = error["ctx"]
            details.append(detail)
        try:
            return ValidationError.from_exception_data(exc.title, details)
        except (KeyError, TypeError, ValueError):  # an error type pydantic cannot rebuild
            return exc


def _section(cls: type[Section]) -> Any:
    """A field holding section *cls*, read from the environment unless given."""
    return Field(default_factory=cls)


class StoreSettings(Section):
    """Which store, and how long a statement of the service may run.

    Parameters
    ----------
    database_url : str
        ``GRIDMAP_DATABASE_URL``: ``postgresql://…`` (PostGIS), ``duckdb:///path``
        or a path (embedded); ``./gridmap.duckdb`` when unset.
    statement_timeout_ms : int
        ``GRIDMAP_STATEMENT_TIMEOUT_MS`` (default 15000; 0: no limit). PostGIS
        cancels a longer statement, the embedded store interrupts it (DuckDB),
        and the request is answered 503 with the reason. The CLI's jobs are
        never limited.
    """

    database_url: str = DEFAULT_DATABASE_URL
    statement_timeout_ms: int = Field(default=DEFAULT_STATEMENT_TIMEOUT_MS, ge=0)


def _weakness(value: str) -> str | None:
    """Why *value* is no secret (too short, too few symbols, low entropy), or ``None``.

    The entropy is estimated from the symbol frequencies of *value* itself
    (Shannon), and a value made of repeats is refused: a random 32-character
    hex or base64 value passes, ``"k" * 40``, ``"password" * 4`` or
    ``"0123456789" * 4`` does not.

    Examples
    --------
    >>> _weakness("k" * 40)
    'only 1 distinct characters'
    >>> _weakness("2b7e151628aed2a6abf7158809cf4f3c") is None
    True
    """
    if len(value) < 32:
        return f"{len(value)} characters without surrounding spaces"
    counts = Counter(value)
    if len(counts) < _MIN_DISTINCT:
        return f"only {len(counts)} distinct characters"
    bits = -sum(n * math.log2(n / len(value)) for n in counts.values())
    if bits < _MIN_BITS:
        return f"about {bits:.0f} bits of entropy, at least {_MIN_BITS:.0f} needed"
    triples = [value[i : i + 3] for i in range(len(value) - 2)]
    if len(set(triples)) * 2 < len(triples):
        return "it repeats itself"
    return None


class SecuritySettings(Section):
    """Secrets, tokens, sessions, rates and security headers.

    Parameters
    ----------
    environment : {"development", "staging", "production"}
        Outside ``development`` the secrets must be set, at least 32
        characters (surrounding spaces not counted), random-looking (at least
        10 distinct characters and about 96 bits of estimated entropy), not
        the built-in ones and not equal to each other; otherwise creation fails.
    secret_key : SecretStr
        HMAC key signing bearer tokens (HS256).
    data_key : SecretStr
        Key from which the field-encryption and blind-index keys are derived.
    token_minutes : int
        Lifetime of tokens issued by ``POST /auth/token``.
    session_minutes : int
        Lifetime of a browser session (``/login``): a shift, 12 hours by default.
    jwt_issuer, jwt_audience : str
        Claims written into tokens and required from them.
    login_per_minute, login_burst : float, int
        Login attempts allowed per user name and client address.
    reports_per_minute, reports_burst : float, int
        Report-intake rate per principal and client address.
    csp : str, optional
        Content-Security-Policy header value; the site's own policy
        (``api.csp.SITE_CSP``) when unset.
    hsts : bool
        Send ``Strict-Transport-Security`` (only behind TLS).
    principal_cache_seconds : float
        How long the principal of a bearer token is reused (0, the default:
        the user is read on every request). A few seconds spare report
        intake a users-table read per request; a user disabled or changed
        meanwhile keeps the old rights that long (``api.security.PrincipalCache``).

    Examples
    --------
    >>> SecuritySettings(environment="development").token_minutes
    60
    >>> SecuritySettings(environment="production", secret_key="short")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for SecuritySettings
    ...
    """

    _secret_fields: ClassVar[frozenset[str]] = frozenset({"secret_key", "data_key"})

    environment: Literal["development", "staging", "production"] = "development"
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    data_key: SecretStr = SecretStr(DEV_DATA_KEY)
    token_minutes: int = Field(default=60, ge=1, le=24 * 60)
    session_minutes: int = Field(default=12 * 60, ge=5, le=7 * 24 * 60)
    jwt_issuer: str = "gridmap"
    jwt_audience: str = "gridmap-api"
    login_per_minute: float = Field(default=10.0, gt=0)
    login_burst: int = Field(default=5, ge=1)
    reports_per_minute: float = Field(default=60.0, gt=0)
    reports_burst: int = Field(default=20, ge=1)
    csp: str | None = None
    hsts: bool = False
    principal_cache_seconds: float = Field(default=0.0, ge=0.0, le=60.0)

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> SecuritySettings:
        if self.environment == "development":
            return self
        for name in ("secret_key", "data_key"):
            value: str = getattr(self, name).get_secret_value().strip()
            weak = _weakness(value)
            if value in _WEAK or weak:
                raise ValueError(
                    f"GRIDMAP_{name.upper()} must be set to a random value of at least 32 "
                    f"characters when GRIDMAP_ENVIRONMENT={self.environment}"
                    f"{f' ({weak})' if weak else ''}; e.g. python -c "
                    "'import secrets; print(secrets.token_urlsafe(32))'"
                )
        if self.secret_key.get_secret_value().strip() == self.data_key.get_secret_value().strip():
            raise ValueError(
                "GRIDMAP_SECRET_KEY and GRIDMAP_DATA_KEY must be different random values: "
                "one signs tokens, the other protects personal data"
            )
        return self

    @property
    def secure_cookies(self) -> bool:
        """Session cookies are ``Secure`` (HTTPS only) outside development."""
        return self.environment != "development"

    def token_config(self) -> TokenConfig:
        """How tokens are signed and checked."""
        from gridmap.security.auth import TokenConfig

        return TokenConfig(
            secret=self.secret_key.get_secret_value(),
            issuer=self.jwt_issuer,
            audience=self.jwt_audience,
            minutes=self.token_minutes,
        )


class PrivacySettings(Section):
    """The disclosure policy's small-count threshold.

    Parameters
    ----------
    min_count : int
        ``GRIDMAP_PRIVACY_MIN_COUNT``: where small counts are protected (heat
        maps, hot spots, KPIs and reports for aggregate-only callers, the
        door-knocking and console summaries), a count below it is not shown
        (default 3).
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_PRIVACY_", extra="ignore")

    min_count: int = Field(default=DEFAULT_MIN_COUNT, ge=1, le=1000)


class MediaSettings(Section):
    """Event photos.

    Parameters
    ----------
    media_dir : Path
        ``GRIDMAP_MEDIA_DIR``: where uploaded photos are stored (EXIF stripped).
    max_photo_bytes : int
        ``GRIDMAP_MAX_PHOTO_BYTES``: largest accepted photo upload.
    """

    media_dir: Path = Path("media")
    max_photo_bytes: int = Field(default=10_000_000, ge=1)


class MapSettings(Section):
    """Map pages: where the browser assets are, and an optional basemap.

    Parameters
    ----------
    assets_dir : Path, optional
        ``GRIDMAP_ASSETS_DIR``: folder of the npm map assets (Leaflet and
        plugins); the copy in the installed package (or a checkout's
        ``node_modules``) when unset (``layers.assets.assets_dir``).
    tiles_url : str, optional
        ``GRIDMAP_TILES_URL``: XYZ URL template of a basemap for the map pages
        and ``gridmap map render`` (e.g. an intranet 天地图 or Gaode server);
        none by default (the imported roads and buildings suffice).
    tiles_attribution : str, optional
        ``GRIDMAP_TILES_ATTRIBUTION``: attribution of that basemap (required
        with ``tiles_url``).
    basemap_crs : {"wgs84", "gcj02"}
        ``GRIDMAP_BASEMAP_CRS``: coordinates of the basemap; ``gcj02`` shifts
        the map overlays to match.

    Examples
    --------
    >>> MapSettings(tiles_url="https://tiles.intra/{z}/{x}/{y}.png")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for MapSettings
      Value error, GRIDMAP_TILES_URL needs GRIDMAP_TILES_ATTRIBUTION ...
    ...
    """

    assets_dir: Path | None = None
    tiles_url: str | None = None
    tiles_attribution: str | None = None
    basemap_crs: Literal["wgs84", "gcj02"] = "wgs84"

    @field_validator("assets_dir", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _attribution(self) -> MapSettings:
        if self.tiles_url and not self.tiles_attribution:
            raise ValueError("GRIDMAP_TILES_URL needs GRIDMAP_TILES_ATTRIBUTION")
        return self


class WebhookSettings(Section):
    """The webhook delivery worker (``GRIDMAP_WEBHOOK_*``).

    Parameters
    ----------
    enabled : bool
        Run the delivery worker in this process.
    max_attempts : int
        Attempts before a delivery goes to the dead-letter list.
    backoff_s, max_backoff_s : float
        First wait after a failure (doubled each time) and the longest wait.
    timeout_s : float
        HTTP timeout of one attempt.
    poll_s : float
        Pause of the worker between rounds.
    overdue_s : float
        How often the worker looks for events that became overdue (超期).
    allow_private_hosts : bool
        Allow subscription URLs on loopback or private addresses (intranets, tests).
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_WEBHOOK_", extra="ignore")

    enabled: bool = True
    max_attempts: int = 12
    backoff_s: float = 1.0
    max_backoff_s: float = 600.0
    timeout_s: float = 5.0
    poll_s: float = 0.5
    overdue_s: float = 30.0
    allow_private_hosts: bool = False

    def options(self) -> DeliveryOptions:
        """The worker's :class:`~gridmap.events.webhooks.DeliveryOptions`."""
        from gridmap.events.webhooks import DeliveryOptions

        return DeliveryOptions(
            max_attempts=self.max_attempts,
            backoff_s=self.backoff_s,
            max_backoff_s=self.max_backoff_s,
            timeout_s=self.timeout_s,
            poll_s=self.poll_s,
            overdue_s=self.overdue_s,
            allow_private_hosts=self.allow_private_hosts,
        )


class Open311Settings(Section):
    """The Open311 GeoReport v2 endpoint (``GRIDMAP_OPEN311_*``).

    Parameters
    ----------
    jurisdiction_id : str, optional
        ``GRIDMAP_OPEN311_JURISDICTION_ID``: the one ``jurisdiction_id`` this
        endpoint serves; the code of the store's city admin unit when unset.
    contact : str
        ``GRIDMAP_OPEN311_CONTACT``: who runs the endpoint, shown in discovery.
    key_service : str
        ``GRIDMAP_OPEN311_KEY_SERVICE``: where a client gets an ``api_key``,
        shown in discovery.

    Examples
    --------
    >>> Open311Settings(jurisdiction_id="370285").jurisdiction_id
    '370285'
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_OPEN311_", extra="ignore")

    jurisdiction_id: str | None = None
    contact: str = "市综治中心 City governance centre"
    key_service: str = (
        "Ask the city administrator for an external-system API key "
        "(gridmap users add NAME --role external_system; gridmap users api-key NAME)"
    )


class ReportSettings(Section):
    """Assessment reports.

    Parameters
    ----------
    rules_file : Path, optional
        ``GRIDMAP_RULES_FILE``: the assessment rules
        (:func:`gridmap.assessment.rules.load_rules`); the shipped ones when unset.
    pdf_font : Path, optional
        ``GRIDMAP_PDF_FONT``: a TrueType font with CJK glyphs for the PDF
        reports and route sheets; :data:`gridmap.assessment.pdf.CJK_FONT` when unset.
    """

    rules_file: Path | None = None
    pdf_font: Path | None = None

    @field_validator("pdf_font", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class ToolSettings(Section):
    """Outside programs the CLI and the tests run.

    Parameters
    ----------
    pg_bin : Path
        ``GRIDMAP_PG_BIN``: folder of the PostgreSQL programs (``initdb``,
        ``pg_ctl`` for throw-away test servers; ``pg_dump``, ``pg_restore``
        for ``gridmap backup``/``restore``).
    dask_scheduler : str, optional
        ``GRIDMAP_DASK_SCHEDULER``: a Dask scheduler for ``gridmap batch run
        --engine dask`` (``--scheduler`` wins); a local cluster when unset.
    """

    pg_bin: Path = DEFAULT_PG_BIN
    dask_scheduler: str | None = None


class Settings(Section):
    """The root of the tree: the HTTP service's own settings and every section.

    Parameters
    ----------
    max_limit : int
        Largest page size; a larger ``limit`` is clamped to it.
    default_limit : int
        Page size when a request names no ``limit``.
    cors_origins : list of str
        Origins allowed to call the API from a browser (none by default).
    max_body_bytes : int
        Largest request body accepted; larger ones get 413.
    time_zone : str
        IANA time zone that reports show times in and read dates without a zone
        in (``GRIDMAP_TIME_ZONE``, default ``Asia/Shanghai``).
    observed_max_age_hours : float
        How old the ``observed_at`` of a report may be (hours); older is refused.
    edge_tolerance_m : float
        The cap of the grid-edge tolerance (metres): a report just outside the
        reporter's grids is accepted within ``min(accuracy_m, edge_tolerance_m)``
        of one of them and routed to the grid that contains the point.
    taxonomy_file : Path, optional
        The event taxonomy (``GRIDMAP_TAXONOMY_FILE``, TOML or JSON; see
        :func:`gridmap.events.taxonomy.load_taxonomy`); the one shipped in the
        package when unset. Checked when the service starts.
    log_format : {"text", "json"}
        ``GRIDMAP_LOG_FORMAT``: ``json`` writes every log line (one per request,
        with its request id, route, status and duration) as a JSON object.
    log_level : str
        ``GRIDMAP_LOG_LEVEL`` (``debug``, ``info``, ``warning``, ``error``); ``gridmap
        serve --log-level`` overrides it.
    store, security, privacy, media, maps, webhooks, open311, reports, tools
        The sections; each read from the environment unless given.

    Examples
    --------
    >>> Settings(max_limit=500).max_limit
    500
    >>> Settings(default_limit=20, max_limit=10)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings
      Value error, GRIDMAP_DEFAULT_LIMIT (20) exceeds GRIDMAP_MAX_LIMIT (10) ...
    ...
    """

    max_limit: int = Field(default=10_000, ge=1)
    default_limit: int = Field(default=100, ge=1)
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=10_000_000, ge=0)
    time_zone: str = DEFAULT_TIME_ZONE
    observed_max_age_hours: float = Field(default=72.0, gt=0, allow_inf_nan=False)
    edge_tolerance_m: float = Field(default=50.0, ge=0, allow_inf_nan=False)
    taxonomy_file: Path | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"

    store: StoreSettings = _section(StoreSettings)
    security: SecuritySettings = _section(SecuritySettings)
    privacy: PrivacySettings = _section(PrivacySettings)
    media: MediaSettings = _section(MediaSettings)
    maps: MapSettings = _section(MapSettings)
    webhooks: WebhookSettings = _section(WebhookSettings)
    open311: Open311Settings = _section(Open311Settings)
    reports: ReportSettings = _section(ReportSettings)
    tools: ToolSettings = _section(ToolSettings)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_time_zone(value)

    @model_validator(mode="after")
    def _default_within_max(self) -> Settings:
        if self.default_limit > self.max_limit:
            raise ValueError(
                f"GRIDMAP_DEFAULT_LIMIT ({self.default_limit}) exceeds "
                f"GRIDMAP_MAX_LIMIT ({self.max_limit})"
            )
        return self

    @classmethod
    def sections(cls) -> dict[str, type[Section]]:
        """The sections of the tree by field name."""
        found: dict[str, type[Section]] = {}
        for name, info in cls.model_fields.items():
            if isinstance(info.annotation, type) and issubclass(info.annotation, Section):
                found[name] = info.annotation
        return found

    @classmethod
    def all_variables(cls) -> list[str]:
        """Every environment variable the tree reads (the README's table names each).

        Examples
        --------
        >>> "GRIDMAP_PRIVACY_MIN_COUNT" in Settings.all_variables()
        True
        """
        names = cls.variables()
        for section in cls.sections().values():
            names.extend(section.variables())
        return names
