"""Build hook: the wheel carries the browser assets (Leaflet and plugins) it serves.

Everything else about the distribution is in ``pyproject.toml``. At build time
the files the maps need (``layers/_assetlist.py``) are copied from the npm
packages in ``node_modules`` (``npm ci``; versions pinned by ``package.json`` and
``package-lock.json``) into ``layers/vendor/`` of the build, so an installed
gridmap draws maps with no ``node_modules`` and no internet access
(``layers.assets.assets_dir`` looks there first). ``GRIDMAP_ASSETS_DIR`` names
another folder to copy from. An editable install (``pip install -e``) copies
nothing: a checkout reads ``node_modules`` directly.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
VENDOR = "layers/vendor"


def _assetlist():  # type: ignore[no-untyped-def]
    """Load ``layers/_assetlist.py`` alone (standard library only; gridmap's deps may be absent)."""
    spec = importlib.util.spec_from_file_location(
        "_gridmap_assetlist", HERE / "layers" / "_assetlist.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _source_dir() -> Path:
    given = os.environ.get("GRIDMAP_ASSETS_DIR", "").strip()
    return Path(given) if given else HERE / "node_modules"


class build_py_with_assets(build_py):  # a setuptools command name, lower case by custom
    """``build_py`` that also copies the needed npm asset files into ``layers/vendor``."""

    def run(self) -> None:
        """Build the packages, then copy the asset files beside them."""
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for rel, src in self._asset_sources().items():
            dest = Path(self.build_lib) / VENDOR / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)

    def _asset_sources(self) -> dict[str, Path]:
        listing = _assetlist()
        source = _source_dir()

        def read_text(rel: str) -> str:
            return self._file(listing, source, rel).read_text(encoding="utf-8")

        files = listing.needed_files(read_text)
        return {
            rel: self._file(listing, source, rel)
            for rel in sorted(files)
            if not rel.startswith(listing.STATIC_PREFIX)  # layers/static: package data
        }

    @staticmethod
    def _file(listing, source: Path, rel: str) -> Path:  # type: ignore[no-untyped-def]
        if rel.startswith(listing.STATIC_PREFIX):
            path = HERE / "layers" / "static" / rel[len(listing.STATIC_PREFIX) :]
        else:
            path = source / rel
        if not path.is_file():
            raise SystemExit(
                f"gridmap build: browser asset {path} is missing: run `npm ci` first "
                "(the wheel carries the map assets from node_modules)"
            )
        return path

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        """The built files, the copied assets included."""
        outputs = list(super().get_outputs(include_bytecode))
        if getattr(self, "editable_mode", False):
            return outputs
        return outputs + [str(Path(self.build_lib) / VENDOR / rel) for rel in self._asset_sources()]


setup(cmdclass={"build_py": build_py_with_assets})
