"""Local browser assets for folium maps: Leaflet and its plugins, served without a CDN.

folium's classes name the scripts and stylesheets they need in ``default_js`` and
``default_css`` (pairs of an asset name such as ``"leaflet"`` and a CDN URL). gridmap
maps must work with no internet access, so every one of those URLs is replaced by
a local one: the files are installed from the npm registry (``package.json`` at the
repository root, ``npm ci``) into ``node_modules/``, plus a few files gridmap ships
itself in ``layers/static/``.

URL space
---------
A local asset URL is ``base_url + path``, where *path* is relative to the asset
directory (``node_modules``), e.g. ``/static/vendor/leaflet/dist/leaflet.js``.
Files gridmap ships itself live under the :data:`STATIC_PREFIX` (``gridmap/``), e.g.
``/static/vendor/gridmap/leaflet.awesome.rotate.min.css``, resolved to
``layers/static/``. :func:`asset_file` maps such a path to a file on disk (and
refuses anything that is not a needed asset), :func:`asset_files` lists them all,
:func:`copy_assets` copies them next to a saved map.

Configuration
-------------
The asset directory is, in this order: the directory named by the setting
``GRIDMAP_ASSETS_DIR`` (the ``maps`` section of :mod:`gridmap.common.settings`,
read by :func:`assets_dir_from_env` only when no directory is passed
explicitly); the copy inside the installed package (:data:`PACKAGED_DIR`,
``layers/vendor``: the wheel's build copies the needed files there from
``node_modules``, see ``setup.py``); ``node_modules`` at the repository root
(a checkout, after ``npm ci``).
"""

from __future__ import annotations

import base64
import functools
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from branca.element import Element, Figure, Link

from gridmap.common.errors import GridmapError
from gridmap.common.settings import MapSettings
from layers._assetlist import ASSETS, CSS_URL, STATIC_PREFIX, Asset, needed_files
from layers._assetlist import css_refs as _css_refs

__all__ = [
    "ASSETS",
    "DEFAULT_BASE_URL",
    "ENV_VAR",
    "PACKAGED_DIR",
    "STATIC_DIR",
    "STATIC_PREFIX",
    "Asset",
    "AssetsNotInstalled",
    "UnknownAsset",
    "asset_file",
    "asset_files",
    "assets_dir",
    "assets_dir_from_env",
    "copy_assets",
    "inline_html",
    "local_url",
    "localize",
    "localized_base_url",
]

#: Environment variable naming the asset directory (default: ``node_modules`` at the repo root).
ENV_VAR = "GRIDMAP_ASSETS_DIR"
#: Where the API serves the assets; maps rendered for the API point there.
DEFAULT_BASE_URL = "/static/vendor/"
#: Files gridmap ships itself.
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The asset files copied into an installed package (the wheel) at build time.
PACKAGED_DIR = Path(__file__).resolve().parent / "vendor"

_REPO_ROOT = Path(__file__).resolve().parent.parent
_E = TypeVar("_E", bound=Element)


class UnknownAsset(GridmapError, LookupError):
    """A folium element asks for a script or stylesheet gridmap cannot serve locally."""

    code = "unknown_asset"

    def __init__(self, name: str, url: str, reason: str = "") -> None:
        msg = (
            f"unknown browser asset {name!r} ({url}): gridmap serves no local copy of it, "
            "so the map would need the internet"
        )
        if reason:
            msg += f"; {reason}"
        msg += ". Add it to package.json and layers/assets.py:ASSETS, or do not use it."
        super().__init__(msg)
        self.name = name
        self.url = url


class AssetsNotInstalled(GridmapError, FileNotFoundError):
    """The npm packages with the browser assets are not installed."""

    code = "assets_not_installed"

    def __init__(self, missing: Path) -> None:
        super().__init__(
            f"browser asset {str(missing)!r} is missing: run `npm ci` in the repository root "
            "of a checkout, or install a gridmap wheel (it carries the assets), "
            f"or point {ENV_VAR} at a directory holding the npm packages of package.json"
        )
        self.missing = missing


# --------------------------------------------------------------------------- files


def assets_dir_from_env(settings: MapSettings | None = None) -> Path | None:
    """Return the asset directory named by ``GRIDMAP_ASSETS_DIR``, or ``None`` if unset.

    Parameters
    ----------
    settings : MapSettings, optional
        The ``maps`` settings; read from the environment when omitted.

    Returns
    -------
    pathlib.Path or None
        The directory of the setting :data:`ENV_VAR`.

    Examples
    --------
    >>> assets_dir_from_env(MapSettings(assets_dir="/srv/gridmap/node_modules"))
    PosixPath('/srv/gridmap/node_modules')
    >>> assets_dir_from_env(MapSettings(assets_dir=" ")) is None
    True
    """
    return (settings if settings is not None else MapSettings()).assets_dir


def assets_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """Return the directory holding the npm packages with the browser assets.

    Parameters
    ----------
    directory : str or path-like, optional
        Use this directory. Without it: ``GRIDMAP_ASSETS_DIR`` if set, else the
        copy inside the installed package (:data:`PACKAGED_DIR`) if there is one,
        else ``node_modules`` at the repository root.

    Returns
    -------
    pathlib.Path
        The directory (it may not exist yet: see :func:`asset_files`).

    Examples
    --------
    >>> assets_dir("/srv/gridmap/node_modules")
    PosixPath('/srv/gridmap/node_modules')
    >>> assets_dir().name
    'node_modules'
    """
    if directory is not None:
        return Path(directory)
    from_env = assets_dir_from_env()
    if from_env is not None:
        return from_env
    if (PACKAGED_DIR / ASSETS["leaflet"].path).is_file():  # type: ignore[operator]
        return PACKAGED_DIR
    return _REPO_ROOT / "node_modules"


def _root_for(path: str, directory: Path) -> tuple[Path, str]:
    if path.startswith(STATIC_PREFIX):
        return STATIC_DIR, path[len(STATIC_PREFIX) :]
    return directory, path


@functools.lru_cache(maxsize=8)
def _needed_files(directory: Path) -> tuple[str, ...]:
    files = needed_files(lambda rel: _read_text(rel, directory))
    for rel in files:
        _file_on_disk(rel, directory)
    return tuple(sorted(files))


def _file_on_disk(path: str, directory: Path) -> Path:
    root, rel = _root_for(path, directory)
    file = root / rel
    if not file.is_file():
        raise AssetsNotInstalled(file)
    return file


def _read_text(path: str, directory: Path) -> str:
    return _file_on_disk(path, directory).read_text(encoding="utf-8")


def asset_files(*, directory: str | os.PathLike[str] | None = None) -> list[str]:
    """List every file the local assets need, as paths relative to the base URL.

    These are the scripts and stylesheets of :data:`ASSETS` and what they load in
    turn (images and fonts named in ``url()`` of the stylesheets, Leaflet's marker
    images), e.g. ``@fortawesome/fontawesome-free/webfonts/fa-solid-900.woff2``.

    Parameters
    ----------
    directory : str or path-like, optional
        Asset directory (see :func:`assets_dir`).

    Returns
    -------
    list of str
        Sorted relative paths.

    Raises
    ------
    AssetsNotInstalled
        If a file is missing (``npm ci`` was not run).

    Examples
    --------
    >>> "leaflet/dist/leaflet.js" in asset_files()
    True
    """
    return list(_needed_files(assets_dir(directory).resolve()))


def asset_file(path: str, *, directory: str | os.PathLike[str] | None = None) -> Path:
    """Return the file on disk behind the asset URL path *path*.

    Only the files listed by :func:`asset_files` are served, so this is safe to
    call with a path taken from a request (no ``..`` escapes, no other files of
    ``node_modules``).

    Parameters
    ----------
    path : str
        Path relative to the base URL, e.g. ``"leaflet/dist/leaflet.css"``.
    directory : str or path-like, optional
        Asset directory (see :func:`assets_dir`).

    Returns
    -------
    pathlib.Path
        The file.

    Raises
    ------
    gridmap.common.errors.NotFound
        If *path* is not a needed asset.
    AssetsNotInstalled
        If the assets are not installed.

    Examples
    --------
    >>> asset_file("leaflet/dist/leaflet.css").name
    'leaflet.css'
    """
    from gridmap.common.errors import NotFound

    root = assets_dir(directory).resolve()
    if path not in _needed_files(root):
        raise NotFound(f"no browser asset {path!r}")
    return _file_on_disk(path, root)


def copy_assets(
    dest_dir: str | os.PathLike[str],
    *,
    subdir: str = "assets",
    directory: str | os.PathLike[str] | None = None,
) -> Path:
    """Copy the needed asset files so that a map saved in *dest_dir* works from disk.

    The relative layout is kept (Font Awesome's stylesheet loads ``../webfonts/``),
    so a map saved as ``dest_dir/map.html`` and localized with
    ``base_url=subdir + "/"`` finds everything.

    Parameters
    ----------
    dest_dir : str or path-like
        Directory of the map file.
    subdir : str, default "assets"
        Subdirectory of *dest_dir* that receives the files.
    directory : str or path-like, optional
        Asset directory to copy from (see :func:`assets_dir`).

    Returns
    -------
    pathlib.Path
        ``dest_dir / subdir``.

    Examples
    --------
    >>> import folium, tempfile
    >>> from layers.render import map_html
    >>> with tempfile.TemporaryDirectory() as out:
    ...     target = copy_assets(out)
    ...     m = localize(folium.Map(tiles=None), "assets/")
    ...     _ = (Path(out) / "map.html").write_text(map_html(m, inline=False), "utf-8")
    ...     (target / "leaflet/dist/leaflet.js").is_file()
    True
    """
    src_root = assets_dir(directory).resolve()
    target = Path(dest_dir) / subdir
    for rel in _needed_files(src_root):
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_file_on_disk(rel, src_root), dest)
    return target


# --------------------------------------------------------------------------- localize


def local_url(name: str, url: str, base_url: str = DEFAULT_BASE_URL) -> str | None:
    """Return the local URL that replaces the asset *name* found at *url*.

    Parameters
    ----------
    name : str
        folium's name of the asset, e.g. ``"leaflet"``.
    url : str
        Its current URL (folium's CDN URL, or an already local URL).
    base_url : str, default "/static/vendor/"
        Where the assets are served.

    Returns
    -------
    str or None
        ``base_url + path``; ``None`` for an asset that gridmap leaves out.

    Raises
    ------
    UnknownAsset
        If gridmap has no local copy of the asset.

    Examples
    --------
    >>> local_url("leaflet", "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js")
    '/static/vendor/leaflet/dist/leaflet.js'
    >>> local_url("glyphicons_css", "https://example.org/bootstrap-glyphicons.css") is None
    True
    """
    asset = ASSETS.get(name)
    if asset is None:
        raise UnknownAsset(name, url)
    tail = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if asset.path is None:
        if tail != asset.upstream:
            raise UnknownAsset(name, url, f"expected a URL ending in {asset.upstream!r}")
        return None
    if tail != asset.upstream and not (url == asset.path or url.endswith("/" + asset.path)):
        raise UnknownAsset(
            name, url, f"folium's {name!r} is {asset.upstream!r}, this URL is another file"
        )
    return _base(base_url) + asset.path


def _base(base_url: str) -> str:
    return base_url if base_url.endswith("/") or not base_url else base_url + "/"


def _localized_links(links: list[tuple[str, str]], base_url: str) -> list[tuple[str, str]]:
    out = []
    for name, url in links:
        new = local_url(name, url, base_url)
        if new is not None:
            out.append((name, new))
    return out


class _LocalHeader(Element):
    """A figure header that localizes every script and stylesheet link added to it.

    Links are also added while a map renders (branca's colormaps add d3 that way),
    so rewriting ``default_js``/``default_css`` alone would let a CDN URL through.
    """

    def __init__(self, base_url: str, old: Element) -> None:
        super().__init__()
        self._name = old._name
        self._parent = old._parent
        self.base_url = base_url
        for name, child in old._children.items():
            self.add_child(child, name=name)

    def add_child(
        self, child: Element, name: str | None = None, index: int | None = None
    ) -> Element:
        if isinstance(child, Link):
            new = local_url(
                name if name is not None else child.get_name(), child.url, self.base_url
            )
            if new is None:
                return self
            child.url = new
        return super().add_child(child, name=name, index=index)


def _walk(element: Element) -> Iterator[Element]:
    stack = [element]
    seen: set[int] = set()
    while stack:
        el = stack.pop()
        if id(el) in seen:
            continue
        seen.add(id(el))
        yield el
        stack.extend(el._children.values())
        if isinstance(el, Figure):
            stack.extend((el.header, el.html, el.script))


def localize(element: _E, base_url: str = DEFAULT_BASE_URL) -> _E:
    """Make a folium map load every script and stylesheet from *base_url*, never a CDN.

    Walks the figure of *element* and all its children recursively and replaces the
    URLs of each element's ``default_js`` and ``default_css`` with
    ``base_url + path`` (see :data:`ASSETS`); links added later while the map
    renders (e.g. d3 by branca's colormaps) are replaced as they are added. The
    lists are replaced per element, folium's class attributes stay untouched.
    Call it again after adding more elements (:func:`layers.render.map_html` does).

    Parameters
    ----------
    element : branca.element.Element
        A ``folium.Map``, its ``Figure`` or any element inside them.
    base_url : str, default "/static/vendor/"
        Where the assets are served; ``"assets/"`` for a map saved next to the
        files of :func:`copy_assets`.

    Returns
    -------
    branca.element.Element
        *element* itself.

    Raises
    ------
    UnknownAsset
        If an element needs an asset gridmap has no local copy of (raised here, or
        while rendering for links added then), so no CDN URL can slip through.

    Examples
    --------
    >>> import folium
    >>> m = localize(folium.Map(tiles=None), "/static/vendor/")
    >>> "https://" in m.get_root().render()
    False
    """
    base = _base(base_url)
    root = element.get_root()
    for el in _walk(root):
        for attr in ("default_js", "default_css"):
            links = getattr(el, attr, None)
            if links:
                setattr(el, attr, _localized_links(list(links), base))
    if isinstance(root, Figure):
        root.header = _LocalHeader(base, root.header)
    return element


def localized_base_url(element: Element) -> str | None:
    """Return the base URL *element*'s figure was localized with, or ``None``.

    Parameters
    ----------
    element : branca.element.Element
        A map or any element in its figure.

    Returns
    -------
    str or None
        The *base_url* of the last :func:`localize` call on the figure.

    Examples
    --------
    >>> import folium
    >>> localized_base_url(localize(folium.Map(tiles=None), "assets/"))
    'assets/'
    """
    header = getattr(element.get_root(), "header", None)
    return header.base_url if isinstance(header, _LocalHeader) else None


# --------------------------------------------------------------------------- inline

_SCRIPT_TAG = re.compile(
    r"""<script\b[^>]*?\bsrc\s*=\s*(?P<q>["'])(?P<url>[^"']*)(?P=q)[^>]*>\s*</script\s*>""",
    re.IGNORECASE,
)
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""\bhref\s*=\s*(?P<q>["'])(?P<url>[^"']*)(?P=q)""", re.IGNORECASE)
_STYLESHEET = re.compile(r"""\brel\s*=\s*(["']?)stylesheet\1""", re.IGNORECASE)
_SOURCE_MAP = re.compile(
    r"(?m)^\s*(//[#@]\s*sourceMappingURL=\S*|/\*[#@]\s*sourceMappingURL=[^*]*\*/)\s*$"
)
_TTF_FALLBACK = re.compile(r""",\s*url\([^)]*\.ttf\)\s*format\(\s*["']truetype["']\s*\)""")
_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}")
_MIME = {
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
}


def _data_uri(path: str, directory: Path) -> str:
    file = _file_on_disk(path, directory)
    mime = _MIME.get(file.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64," + base64.b64encode(file.read_bytes()).decode("ascii")


def _inline_css(path: str, directory: Path) -> str:
    css = _SOURCE_MAP.sub("", _read_text(path, directory))
    # Every browser gridmap supports reads woff2: leave out the (larger) TrueType copies.
    css = _TTF_FALLBACK.sub("", css)
    # Embed each font once: a later @font-face of the same files only gives it another
    # family name (Font Awesome's v4/v5 compatibility names), not worth its bytes.
    embedded: set[str] = set()

    def first_face(match: re.Match[str]) -> str:
        refs = _css_refs(match.group(0), path)
        if refs and embedded.issuperset(refs):
            return ""
        embedded.update(refs)
        return match.group(0)

    css = _FONT_FACE.sub(first_face, css)

    def embed(match: re.Match[str]) -> str:
        refs = _css_refs(match.group(0), path)
        return f'url("{_data_uri(refs[0], directory)}")' if refs else match.group(0)

    css = CSS_URL.sub(embed, css)
    return "<style>\n" + re.sub(r"(?i)</style", r"<\\/style", css) + "\n</style>"


def _script(code: str) -> str:
    # Keep the HTML parser inside the element: "</script" and "<!--" never appear raw.
    return "<script>\n" + re.sub(r"(?i)<(/?script|!--)", r"\\x3C\1", code) + "\n</script>"


def _inline_js(path: str, directory: Path) -> str:
    out = _script(_SOURCE_MAP.sub("", _read_text(path, directory)))
    if path == ASSETS["leaflet"].path:
        # Leaflet finds its default marker images next to leaflet.css; inline, they are
        # data URIs, so name them explicitly.
        images = {
            key: _data_uri(f"leaflet/dist/images/{file}", directory)
            for key, file in (
                ("iconUrl", "marker-icon.png"),
                ("iconRetinaUrl", "marker-icon-2x.png"),
                ("shadowUrl", "marker-shadow.png"),
            )
        }
        options = ", ".join(f'{k}: "{v}"' for k, v in images.items())
        out += _script(
            f'L.Icon.Default.imagePath = "";\nL.Icon.Default.mergeOptions({{{options}}});'
        )
    return out


def inline_html(
    html: str,
    *,
    base_url: str = DEFAULT_BASE_URL,
    directory: str | os.PathLike[str] | None = None,
) -> str:
    """Make a rendered map page self-contained: inline its local scripts and stylesheets.

    Each ``<script src>`` and ``<link rel="stylesheet" href>`` whose URL is a local
    asset under *base_url* is replaced by the file's content; images and fonts the
    stylesheets load become ``data:`` URIs. The page then needs neither a server nor
    the internet (for ``gridmap map render --out FILE.html`` and the demo map).

    Parameters
    ----------
    html : str
        A page rendered from a map localized with *base_url*.
    base_url : str, default "/static/vendor/"
        The base URL the page's asset links use.
    directory : str or path-like, optional
        Asset directory (see :func:`assets_dir`).

    Returns
    -------
    str
        The self-contained page.

    Raises
    ------
    AssetsNotInstalled
        If an asset file is missing.

    Examples
    --------
    >>> import folium
    >>> m = localize(folium.Map(tiles=None))
    >>> page = inline_html(m.get_root().render())
    >>> "<script src=" in page
    False
    """
    base = _base(base_url)
    root = assets_dir(directory).resolve()
    needed = set(_needed_files(root))

    def asset_path(url: str) -> str | None:
        if not url.startswith(base):
            return None
        rel = url[len(base) :]
        return rel if rel in needed else None

    def script(match: re.Match[str]) -> str:
        rel = asset_path(match["url"])
        return match.group(0) if rel is None else _inline_js(rel, root)

    def link(match: re.Match[str]) -> str:
        tag = match.group(0)
        href = _HREF.search(tag)
        if href is None or not _STYLESHEET.search(tag):
            return tag
        rel = asset_path(href["url"])
        return tag if rel is None else _inline_css(rel, root)

    # One pass over the page, so inlined code is never searched for tags again.
    return re.sub(
        f"{_SCRIPT_TAG.pattern}|{_LINK_TAG.pattern}",
        lambda m: script(m) if m.group(0)[1:7].lower() == "script" else link(m),
        html,
        flags=re.IGNORECASE,
    )
