"""Photos of reports and transitions: checked, stripped of EXIF (GPS), stored by digest.

A photo is re-encoded by Pillow, which drops every metadata block (EXIF with
its GPS position, XMP, comments): a resident's precise home point never
leaks through a picture. Files are named by the SHA-256 of what is stored,
so uploading the same picture twice stores it once, and names can be
checked strictly (no path ever comes from a client).
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

from gridmap.common.errors import BadInput, NotFound, UnsupportedFormat
from gridmap.events.errors import MediaTooLarge
from gridmap.security.access import Principal
from gridmap.storage import Store

__all__ = [
    "DEFAULT_MAX_PHOTO_BYTES",
    "MEDIA_NAME",
    "may_see_photo",
    "media_path",
    "store_photo",
]

#: Largest photo accepted by default (10 MB).
DEFAULT_MAX_PHOTO_BYTES = 10_000_000
_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
#: What stored media names look like (nothing else is ever accepted as a photo).
MEDIA_NAME = re.compile(r"[0-9a-f]{64}\.(jpg|png|webp)")


def store_photo(data: bytes, *, media_dir: Path, max_bytes: int = DEFAULT_MAX_PHOTO_BYTES) -> str:
    """Check, strip and store one photo; return its media name (``<sha256>.jpg``).

    Raises
    ------
    MediaTooLarge
        *data* is larger than *max_bytes*.
    UnsupportedFormat
        It is not a JPEG, PNG or WebP image.

    Examples
    --------
    >>> import tempfile, io
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("RGB", (4, 4)).save(buf, "JPEG")
    >>> name = store_photo(buf.getvalue(), media_dir=Path(tempfile.mkdtemp()))
    >>> name.endswith(".jpg")
    True
    """
    if len(data) > max_bytes:
        raise MediaTooLarge(f"photo of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    if not data:
        raise BadInput("the photo is empty", field="file")
    try:
        from PIL import Image, ImageOps, UnidentifiedImageError
    except ImportError as exc:  # pragma: no cover - Pillow is a dependency
        raise UnsupportedFormat("photo upload needs Pillow installed") from exc
    Image.MAX_IMAGE_PIXELS = 60_000_000
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            if fmt not in _FORMATS:
                raise UnsupportedFormat(f"photos must be JPEG, PNG or WebP, not {fmt or 'unknown'}")
            img.load()
            upright = ImageOps.exif_transpose(img)
            if upright.mode not in ("RGB", "RGBA", "L"):
                upright = upright.convert("RGB")
            if fmt == "JPEG" and upright.mode == "RGBA":
                upright = upright.convert("RGB")
            out = io.BytesIO()
            # No exif=, no icc/xmp: the new file carries pixels only.
            upright.save(out, fmt, **({"quality": 90} if fmt != "PNG" else {}))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, UnsupportedFormat):
            raise
        raise UnsupportedFormat("the upload is not a readable JPEG, PNG or WebP image") from None
    payload = out.getvalue()
    name = f"{hashlib.sha256(payload).hexdigest()}.{_FORMATS[fmt]}"
    media_dir.mkdir(parents=True, exist_ok=True)
    target = media_dir / name
    if not target.exists():
        tmp = target.with_suffix(".part")
        tmp.write_bytes(payload)
        tmp.replace(target)
    return name


def media_path(name: str, *, media_dir: Path) -> Path:
    """The file of a stored photo; ``NotFound`` for any name not made by :func:`store_photo`.

    Examples
    --------
    >>> media_path("../etc/passwd", media_dir=Path("/tmp"))
    Traceback (most recent call last):
    gridmap.common.errors.NotFound: no photo '../etc/passwd'
    """
    if not MEDIA_NAME.fullmatch(name):
        raise NotFound(f"no photo {name[:80]!r}")
    path = media_dir / name
    if not path.is_file():
        raise NotFound(f"no photo {name!r}")
    return path


#: Events holding a photo, directly or through one of their transitions (a parameter
#: per dialect placeholder: the media name, then its ``/events/media/`` href, twice).
_PHOTO_EVENTS = {
    "postgis": (
        "SELECT grid_code, community_code, town_code FROM events "
        "WHERE %s = ANY(photos) OR %s = ANY(photos) "
        "UNION ALL SELECT e.grid_code, e.community_code, e.town_code "
        "FROM event_transitions t JOIN events e ON e.id = t.event_id "
        "WHERE %s = ANY(t.photos) OR %s = ANY(t.photos)"
    ),
    "duckdb": (
        "SELECT grid_code, community_code, town_code FROM events "
        "WHERE list_contains(photos, ?) OR list_contains(photos, ?) "
        "UNION ALL SELECT e.grid_code, e.community_code, e.town_code "
        "FROM event_transitions t JOIN events e ON e.id = t.event_id "
        "WHERE list_contains(t.photos, ?) OR list_contains(t.photos, ?)"
    ),
}


def may_see_photo(store: Store, name: str, *, principal: Principal) -> bool:
    """Whether *principal* may read an event that holds photo *name* (itself or a transition).

    A photo shows what an event shows (a place, often a home): it is served
    only to callers who may read one of the events referring to it, and to
    nobody while no event refers to it yet.

    Examples
    --------
    >>> from gridmap.storage import open_store
    >>> from gridmap.security.access import SYSTEM
    >>> may_see_photo(open_store(":memory:", migrate=True), "0" * 64 + ".jpg", principal=SYSTEM)
    False
    """
    href = f"/events/media/{name}"
    with store.scoped(principal.areas):
        rows = store.sql(  # type: ignore[attr-defined]
            _PHOTO_EVENTS[store.dialect], (name, href, name, href)
        )
    return any(
        principal.covers(next((c for c in row if isinstance(c, str) and c), None)) for row in rows
    )
