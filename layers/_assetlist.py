"""The browser assets gridmap serves in place of folium's CDN URLs: the list, and what it needs.

Standard library only: the build backend (``setup.py``) loads this file on its own
to copy the needed files from ``node_modules`` into the wheel, before any of
gridmap's dependencies may be installed. :mod:`layers.assets` is the interface.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = ["ASSETS", "STATIC_PREFIX", "Asset", "css_refs", "needed_files"]

#: URL prefix of the files gridmap ships itself (in ``layers/static``).
STATIC_PREFIX = "gridmap/"


@dataclass(frozen=True)
class Asset:
    """One script or stylesheet that folium asks for, and its local replacement.

    Parameters
    ----------
    name : str
        The name folium gives it (first element of a ``default_js``/``default_css`` pair).
    path : str or None
        URL path relative to the base URL (and file path relative to the asset
        directory, or to :data:`STATIC_DIR` under :data:`STATIC_PREFIX`); ``None`` for
        an asset that is deliberately left out of maps.
    upstream : str
        File name at the end of folium's CDN URL; a URL under this *name* that ends
        differently is another asset (folium reuses some names) and is refused.
    package : str or None
        npm package that provides the file (``None`` for gridmap's own files).
    kind : {"js", "css"}
        Script or stylesheet.
    extras : tuple of str
        Further files the asset loads at run time that are not ``url()`` references
        of a stylesheet (e.g. Leaflet's default marker images).
    """

    name: str
    path: str | None
    upstream: str
    package: str | None
    kind: Literal["js", "css"]
    extras: tuple[str, ...] = ()


def _a(
    name: str,
    path: str | None,
    upstream: str,
    package: str | None,
    extras: tuple[str, ...] = (),
) -> Asset:
    kind: Literal["js", "css"] = "css" if upstream.endswith(".css") else "js"
    return Asset(name, path, upstream, package, kind, extras)


_LEAFLET_IMAGES = tuple(
    f"leaflet/dist/images/{f}"
    for f in ("marker-icon.png", "marker-icon-2x.png", "marker-shadow.png")
)

#: Every asset folium may ask for that gridmap serves locally, by folium's name.
ASSETS: Mapping[str, Asset] = MappingProxyType(
    {
        a.name: a
        for a in (
            # folium.Map
            _a("leaflet", "leaflet/dist/leaflet.js", "leaflet.js", "leaflet", _LEAFLET_IMAGES),
            _a("leaflet_css", "leaflet/dist/leaflet.css", "leaflet.css", "leaflet"),
            _a("jquery", "jquery/dist/jquery.min.js", "jquery-3.7.1.min.js", "jquery"),
            _a("jquery3.7.1", "jquery/dist/jquery.min.js", "jquery.min.js", "jquery"),
            _a(
                "bootstrap",
                "bootstrap/dist/js/bootstrap.bundle.min.js",
                "bootstrap.bundle.min.js",
                "bootstrap",
            ),
            _a(
                "bootstrap_css",
                "bootstrap/dist/css/bootstrap.min.css",
                "bootstrap.min.css",
                "bootstrap",
            ),
            # Swagger UI for the API's /docs page (FastAPI would load it from a CDN).
            _a(
                "swagger_ui_js",
                "swagger-ui-dist/swagger-ui-bundle.js",
                "swagger-ui-bundle.js",
                "swagger-ui-dist",
                ("swagger-ui-dist/favicon-32x32.png",),
            ),
            _a(
                "swagger_ui_css",
                "swagger-ui-dist/swagger-ui.css",
                "swagger-ui.css",
                "swagger-ui-dist",
            ),
            # Bootstrap 3 glyph icons are not on npm; gridmap maps use Font Awesome icons.
            _a("glyphicons_css", None, "bootstrap-glyphicons.css", None),
            _a(
                "awesome_markers",
                "leaflet.awesome-markers/dist/leaflet.awesome-markers.js",
                "leaflet.awesome-markers.js",
                "leaflet.awesome-markers",
            ),
            _a(
                "awesome_markers_css",
                "leaflet.awesome-markers/dist/leaflet.awesome-markers.css",
                "leaflet.awesome-markers.css",
                "leaflet.awesome-markers",
            ),
            _a(
                "awesome_markers_font_css",
                "@fortawesome/fontawesome-free/css/all.min.css",
                "all.min.css",
                "@fortawesome/fontawesome-free",
            ),
            _a(
                "awesome_rotate_css",
                STATIC_PREFIX + "leaflet.awesome.rotate.min.css",
                "leaflet.awesome.rotate.min.css",
                None,
            ),
            # folium.plugins.MarkerCluster
            _a(
                "markerclusterjs",
                "leaflet.markercluster/dist/leaflet.markercluster.js",
                "leaflet.markercluster.js",
                "leaflet.markercluster",
            ),
            _a(
                "markerclustercss",
                "leaflet.markercluster/dist/MarkerCluster.css",
                "MarkerCluster.css",
                "leaflet.markercluster",
            ),
            _a(
                "markerclusterdefaultcss",
                "leaflet.markercluster/dist/MarkerCluster.Default.css",
                "MarkerCluster.Default.css",
                "leaflet.markercluster",
            ),
            # folium.plugins.Fullscreen
            _a(
                "Control.Fullscreen.js",
                "leaflet.fullscreen/Control.FullScreen.js",
                "Control.FullScreen.min.js",
                "leaflet.fullscreen",
            ),
            _a(
                "Control.FullScreen.css",
                "leaflet.fullscreen/Control.FullScreen.css",
                "Control.FullScreen.css",
                "leaflet.fullscreen",
            ),
            # folium.plugins.MeasureControl
            _a(
                "leaflet_measure_js",
                "leaflet-measure/dist/leaflet-measure.min.js",
                "leaflet-measure.min.js",
                "leaflet-measure",
            ),
            _a(
                "leaflet_measure_css",
                "leaflet-measure/dist/leaflet-measure.css",
                "leaflet-measure.min.css",
                "leaflet-measure",
            ),
            # folium.plugins.HeatMap
            _a(
                "leaflet-heat.js",
                "leaflet.heat/dist/leaflet-heat.js",
                "leaflet_heat.min.js",
                "leaflet.heat",
            ),
            # layers.vector.VectorTileLayer: big layers drawn from vector tiles
            _a(
                "leaflet_vectorgrid",
                "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js",
                "Leaflet.VectorGrid.bundled.min.js",
                "leaflet.vectorgrid",
            ),
            # branca colormaps (legends of folium.Choropleth, colormap.add_to(m)) add d3 v3
            _a("d3", "d3/d3.min.js", "d3.min.js", "d3"),
        )
    }
)


CSS_URL = re.compile(r"""url\(\s*(?P<q>['"]?)(?P<ref>[^'")]+)(?P=q)\s*\)""")


def css_refs(css: str, css_path: str) -> list[str]:
    """Relative ``url()`` references of a stylesheet, as paths relative to the URL root."""
    out = []
    for match in CSS_URL.finditer(css):
        ref = match["ref"].strip()
        if ref.startswith(("data:", "#", "http:", "https:", "//", "/")):
            continue
        ref = ref.split("#", 1)[0].split("?", 1)[0]
        out.append(posixpath.normpath(posixpath.join(posixpath.dirname(css_path), ref)))
    return out


def needed_files(read_text: Callable[[str], str]) -> set[str]:
    """Every file the assets need, as paths relative to the asset URL root.

    The scripts and stylesheets of :data:`ASSETS`, their ``extras``, and the
    images and fonts named in ``url()`` of the stylesheets.

    Parameters
    ----------
    read_text : callable
        Reads a stylesheet given its relative path.

    Returns
    -------
    set of str
        The relative paths (those under :data:`STATIC_PREFIX` included).
    """
    files: set[str] = set()
    for asset in ASSETS.values():
        if asset.path is None:
            continue
        files.add(asset.path)
        files.update(asset.extras)
        if asset.kind == "css":
            files.update(css_refs(read_text(asset.path), asset.path))
    return files
