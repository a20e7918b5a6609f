"""The layer catalog and its renderers: what each map/data layer is and how it is drawn.

- :mod:`layers.catalog`: :data:`~layers.catalog.CATALOG` of :class:`~layers.catalog.LayerDef`
  (titles, fields and queryables, style, zoom range, roles), and display labels.
- :mod:`layers.render`: folium maps from GeoDataFrames (never from a database).
- :mod:`layers.assets`: the browser assets (Leaflet and plugins) served locally.
"""

from layers.catalog import CATALOG, FieldDef, LayerDef, get_layer, label

__all__ = ["CATALOG", "FieldDef", "LayerDef", "get_layer", "label"]
