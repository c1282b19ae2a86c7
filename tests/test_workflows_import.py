"""``gmt_ase.workflows`` from the repository root (where the source ``gmt_ase/`` shadows an installed copy) and
the error that names the extra when jobflow is missing; both in fresh interpreters started in the root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Drop setuptools' editable-install finder, so the interpreter sees what a plain ``pip install .`` leaves: the
#: repository root first on sys.path, and no mapping of gmt_ase.workflows to the top-level workflows/ folder.
_NO_EDITABLE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in (getattr(f, "__module__", "") or "")
                    and "editable" not in type(f).__name__.lower()]
sys.path_importer_cache.clear()
"""


def run_in_root(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _NO_EDITABLE + code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_workflows_import_from_the_repository_root():
    run = run_in_root(
        "import gmt_ase, gmt_ase.workflows as w\n"
        "from gmt_ase.workflows import TensorPredictionMaker\n"
        "print(gmt_ase.__file__, w.__file__, TensorPredictionMaker.__module__)\n"
    )
    assert run.returncode == 0, run.stderr
    package, workflows, module = run.stdout.split()
    assert Path(package) == ROOT / "gmt_ase" / "__init__.py"
    assert Path(workflows) == ROOT / "workflows" / "__init__.py"  # the one code base, not a copy
    assert module == "gmt_ase.workflows.jobs"


def test_a_missing_extra_names_itself():
    run = run_in_root(
        "sys.modules['jobflow'] = None  # as if jobflow were not installed\n"
        "from gmt_ase.workflows import TensorPredictionMaker\n"
    )
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: gmt_ase.workflows.TensorPredictionMaker needs 'jobflow'")
    assert 'pip install "gmt_ase[workflows]"' in last
