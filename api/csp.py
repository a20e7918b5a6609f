"""The one Content-Security-Policy builder for the pages this API serves.

Every page shares one policy: everything from this origin only, inline styles,
``data:`` images and fonts, no plugins, no ``<base>``. What differs between
pages is a parameter: extra script sources (the folium map pages need inline
scripts, and Leaflet plugins ``eval``), extra image sources (``blob:`` for
photos taken in the browser, an intranet basemap origin), the service-worker
shell of the field app, form posts, and whether the page may be framed by a
page of this origin.

Examples
--------
>>> page_csp()
"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
frame-ancestors 'none'"
>>> "img-src 'self' data: https://tiles.intra" in page_csp(images=("https://tiles.intra",))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

__all__ = [
    "CONSOLE_CSP",
    "DOORKNOCK_CSP",
    "FIELD_APP_CSP",
    "MAP_CSP",
    "SITE_CSP",
    "map_csp",
    "page_csp",
]


def page_csp(
    *,
    scripts: Sequence[str] = (),
    images: Sequence[str] = (),
    app_shell: bool = False,
    forms: bool = False,
    framed: bool = False,
    base_uri: str = "'none'",
) -> str:
    """The Content-Security-Policy header value of one page.

    Parameters
    ----------
    scripts : sequence of str
        Script sources besides ``'self'`` (``'unsafe-inline'``, ``'unsafe-eval'``).
    images : sequence of str
        Image sources besides ``'self' data:`` (``blob:``, a basemap origin).
    app_shell : bool
        Allow this origin's service worker and web-app manifest.
    forms : bool
        Allow forms to post to this origin (``form-action 'self'``).
    framed : bool
        Allow pages of this origin to frame the page (else no one may).
    base_uri : str
        The ``base-uri`` source.

    Returns
    -------
    str
        Directives in a fixed order, separated by ``"; "``.
    """
    directives = [
        ("default-src", "'self'"),
        ("script-src", " ".join(("'self'", *scripts))),
        ("style-src", "'self' 'unsafe-inline'"),
        ("img-src", " ".join(("'self'", "data:", *images))),
        ("font-src", "'self' data:"),
        ("connect-src", "'self'"),
    ]
    if app_shell:
        directives += [("worker-src", "'self'"), ("manifest-src", "'self'")]
    directives += [("object-src", "'none'"), ("base-uri", base_uri)]
    if forms:
        directives.append(("form-action", "'self'"))
    directives.append(("frame-ancestors", "'self'" if framed else "'none'"))
    return "; ".join(f"{name} {value}" for name, value in directives)


#: Every answer without a policy of its own (folium pages: inline scripts).
SITE_CSP = page_csp(
    scripts=("'unsafe-inline'",), images=("blob:",), forms=True, framed=True, base_uri="'self'"
)
#: The field app (网格通): its own scripts only, photos as ``blob:``, a service worker.
FIELD_APP_CSP = page_csp(images=("blob:",), app_shell=True, forms=True)
#: The command console (指挥台).
CONSOLE_CSP = page_csp(images=("blob:",), forms=True)
#: The door-knock campaign page (inline scripts, framed by the console's origin).
DOORKNOCK_CSP = page_csp(scripts=("'unsafe-inline'",), framed=True)


def map_csp(tiles_url: str | None = None) -> str:
    """The policy of the folium map pages; an intranet basemap's origin may serve images.

    Parameters
    ----------
    tiles_url : str or None
        The basemap's tile URL template (``{s}`` subdomains become ``*``).

    Returns
    -------
    str
        :func:`page_csp` with inline and ``eval`` scripts, framed by this origin.

    Examples
    --------
    >>> "img-src 'self' data: https://*.tiles.intra;" in map_csp("https://{s}.tiles.intra/{z}/{x}/{y}.png")
    True
    >>> map_csp("not a url") == map_csp(None) == MAP_CSP
    True
    """
    origin: tuple[str, ...] = ()
    if tiles_url:
        parts = urlsplit(tiles_url)
        if parts.scheme and parts.netloc:
            origin = (f"{parts.scheme}://{parts.netloc}".replace("{s}", "*"),)
    return page_csp(scripts=("'unsafe-inline'", "'unsafe-eval'"), images=origin, framed=True)


#: The folium map pages without a basemap origin.
MAP_CSP = map_csp()
