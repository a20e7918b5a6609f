"""Residents and households (实有人口).

* :mod:`~gridmap.population.registry` — households and the people living in them;
* :mod:`~gridmap.population.registers` — bulk import of registers from spreadsheets;
* :mod:`~gridmap.population.documents` — identity documents (证件) and their checks.
"""
