"""Configuration files (TOML or JSON): read, check, and say clearly what is wrong.

The event taxonomy (``GRIDMAP_TAXONOMY_FILE``, :func:`gridmap.events.taxonomy.load_taxonomy`)
and the assessment rules (``GRIDMAP_RULES_FILE``, :func:`gridmap.assessment.rules.load_rules`)
are files people edit. The defaults ship in the package (``gridmap/data/*.toml``,
:func:`shipped`); a file named in the settings is read and validated when the
service or the command starts, and any problem is one :class:`ConfigError`
naming the file, the key and what is expected.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gridmap.common.errors import BadInput

__all__ = ["MAX_BYTES", "ConfigError", "explain", "read_config", "shipped"]

#: Largest configuration file read.
MAX_BYTES = 1_000_000


class ConfigError(BadInput):
    """A configuration file that cannot be used; the message says where and why."""

    code = "bad_config"


def shipped(name: str) -> Path:
    """Path of a default file shipped in the package (``taxonomy.toml``, ``rules.toml``).

    Examples
    --------
    >>> shipped("rules.toml").name
    'rules.toml'
    """
    return Path(str(resources.files("gridmap") / "data" / name))


def read_config(path: str | Path, *, what: str) -> dict[str, Any]:
    """The mapping in a TOML (``.toml``) or JSON (``.json``) file.

    Raises
    ------
    ConfigError
        Missing or unreadable file, another suffix, a syntax error (with its
        line), or a document that is not a mapping.

    Examples
    --------
    >>> read_config(shipped("rules.toml"), what="rules")["patrol_days"]
    'all'
    """
    p = Path(path)
    label = f"{what} file {p}"
    if not p.is_file():
        raise ConfigError(f"{label}: no such file", field=what)
    if p.stat().st_size > MAX_BYTES:
        raise ConfigError(f"{label}: larger than {MAX_BYTES} bytes", field=what)
    suffix = p.suffix.lower()
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: cannot be read as UTF-8 text ({exc})", field=what) from None
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"{label}: must be a .toml or .json file", field=what)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{label}: syntax error: {exc}", field=what) from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: the document must be a table (mapping)", field=what)
    return dict(data)


def explain(exc: ValidationError, *, path: str | Path, what: str) -> ConfigError:
    """One :class:`ConfigError` listing each problem of a pydantic validation as ``key: why``."""
    problems = []
    for err in exc.errors()[:10]:
        where = ".".join(str(x) for x in err.get("loc", ())) or "(top)"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    more = f" (and {len(exc.errors()) - 10} more)" if len(exc.errors()) > 10 else ""
    return ConfigError(f"{what} file {path}: " + "; ".join(problems) + more, field=what)
