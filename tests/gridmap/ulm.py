"""A real OpenStreetMap extract gridmap does not ship: a corner of Ulm (Germany).

``planet_10.068,48.135_10.071,48.137.osm`` is osmnx's test input (OSM XML,
© OpenStreetMap contributors, ODbL), shipped by Debian's ``python-osmnx-doc``
package (installed by ``dev.sh``): 32 real buildings and 14 streets. gridmap
reads ``.osm.pbf`` only, so the tests turn it into one with Debian's
``osmium`` (``osmium-tool``).

The extract has no administrative boundaries. :func:`ulm_pbf` can add two
SYNTHETIC ones (labelled so in their names): a street-level town
(``admin_level=8``) covering the whole corner and a community
(``admin_level=10``) covering only its western part, so that the buildings of
the eastern part lie outside every community, as in the cities of issue 19.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ULM_OSM = Path(
    "/usr/share/doc/python-osmnx-doc/examples/tests/input_data/"
    "planet_10.068,48.135_10.071,48.137.osm"
)
#: Buildings of the extract (as gridmap reads them).
ULM_BUILDINGS = 32
#: (minx, miny, maxx, maxy) of the synthetic town and community.
TOWN_BOX = (10.0675, 48.1345, 10.0720, 48.1370)
COMMUNITY_BOX = (10.0675, 48.1345, 10.0700, 48.1370)


def _boundary(rid: int, box: tuple[float, float, float, float], level: int, name: str) -> str:
    x0, y0, x1, y1 = box
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    nodes = "".join(
        f'<node id="{rid * 10 + i}" lat="{y}" lon="{x}" version="1"/>\n'
        for i, (x, y) in enumerate(corners)
    )
    refs = "".join(f'<nd ref="{rid * 10 + i}"/>' for i in (0, 1, 2, 3, 0))
    way = f'<way id="{rid}" version="1">{refs}</way>\n'
    rel = (
        f'<relation id="{rid}" version="1"><member type="way" ref="{rid}" role="outer"/>'
        '<tag k="type" v="boundary"/><tag k="boundary" v="administrative"/>'
        f'<tag k="admin_level" v="{level}"/><tag k="name" v="{name}"/></relation>\n'
    )
    return nodes + way + rel


def ulm_pbf(folder: Path, *, boundaries: bool = False) -> Path:
    """The Ulm extract as ``.osm.pbf`` in *folder*, optionally with the synthetic boundaries."""
    osmium = shutil.which("osmium")
    if not ULM_OSM.exists() or osmium is None:
        pytest.fail(
            "the Ulm extract (Debian python-osmnx-doc) or osmium (osmium-tool) is missing: "
            "run ./dev.sh test, which installs both"
        )
    text = ULM_OSM.read_text(encoding="utf-8")
    if boundaries:
        extra = _boundary(900000001, TOWN_BOX, 8, "合成街道 synthetic town") + _boundary(
            900000002, COMMUNITY_BOX, 10, "合成社区 synthetic community"
        )
        text = text.replace("</osm>", extra + "</osm>")
    src = folder / ("ulm-boundaries.osm" if boundaries else "ulm.osm")
    src.write_text(text, encoding="utf-8")
    out = src.with_suffix(".osm.pbf")
    subprocess.run([osmium, "sort", str(src), "-o", str(out), "-O"], check=True, timeout=60)
    return out
