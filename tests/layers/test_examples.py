"""The Examples sections of the public docstrings run as written."""

from __future__ import annotations

import doctest
from pathlib import Path
from types import ModuleType

import pytest

import layers.assets
import layers.catalog
import layers.render


@pytest.mark.parametrize(
    "module", [layers.assets, layers.catalog, layers.render], ids=lambda m: m.__name__
)
def test_docstring_examples(module: ModuleType, node_modules: Path) -> None:
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, raise_on_error=False, verbose=False)
    assert result.failed == 0
    assert result.attempted >= 10


@pytest.mark.parametrize("module", [layers.assets, layers.catalog, layers.render])
def test_public_functions_have_examples(module: ModuleType) -> None:
    for name in module.__all__:
        obj = getattr(module, name)
        if callable(obj) and not isinstance(obj, type) and obj.__module__ == module.__name__:
            assert "Examples\n" in (obj.__doc__ or ""), f"{module.__name__}.{name}"
