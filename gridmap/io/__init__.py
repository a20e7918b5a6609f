"""Getting data in and out of gridmap: files and OSM extracts in, files out.

read (:mod:`~gridmap.io.readers`, :mod:`~gridmap.io.osm`) → validate and
repair (:mod:`~gridmap.io.repair`) → write in one transaction
(:mod:`~gridmap.io.importer`); :mod:`~gridmap.io.export` writes a stored layer
back to a file.
"""

from gridmap.io.export import export_layer
from gridmap.io.importer import ImportReport, import_layer, import_osm
from gridmap.io.osm import OsmConfig, read_osm
from gridmap.io.readers import read_file
from gridmap.io.repair import repair

__all__ = [
    "ImportReport",
    "OsmConfig",
    "export_layer",
    "import_layer",
    "import_osm",
    "read_file",
    "read_osm",
    "repair",
]
