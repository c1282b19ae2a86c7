"""Source-tree stand-in for ``gmt_ase.workflows``: loads the repository's top-level ``workflows/`` package.

An installed gmt_ase maps ``gmt_ase.workflows`` to ``workflows/`` (``package_dir`` in setup.cfg) and this
file is not installed. In a source checkout (the repository root comes first on ``sys.path``, so Python
imports this ``gmt_ase/`` folder even after ``pip install .``) it loads ``../workflows/__init__.py`` as
``gmt_ase.workflows``, with ``../workflows`` as its ``__path__``: the same code either way, never a copy.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _load_source_package() -> None:
    folder = Path(__file__).resolve().parents[2] / "workflows"
    init = folder / "__init__.py"
    if not init.is_file():
        raise ImportError(f"gmt_ase.workflows: {init} is missing (an incomplete source tree?)", name=__name__)
    spec = importlib.util.spec_from_file_location(__name__, init, submodule_search_locations=[str(folder)])
    if spec is None or spec.loader is None:
        raise ImportError(f"gmt_ase.workflows: cannot load {init}", name=__name__)
    module = importlib.util.module_from_spec(spec)
    sys.modules[__name__] = module  # the import system returns what sys.modules holds under this name
    spec.loader.exec_module(module)


_load_source_package()
