"""HTTP routers: thin layers over gridmap and layers."""
