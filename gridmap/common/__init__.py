"""The shared vocabulary every other package uses (共用基础).

* :mod:`~gridmap.common.model` — the layers gridmap stores and their columns;
* :mod:`~gridmap.common.errors` — domain errors (``api/errors.py`` maps them to HTTP);
* :mod:`~gridmap.common.timeparse` — the one parser of times read from outside;
* :mod:`~gridmap.common.timezone` — the time zone people read times in;
* :mod:`~gridmap.common.extras` — optional extras and the error naming a missing one;
* :mod:`~gridmap.common.configfiles` — TOML/JSON configuration files, checked.
"""
