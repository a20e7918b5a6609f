"""gridmap: GIS patrol and grid mapping for grid-based community governance (网格化服务管理)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
