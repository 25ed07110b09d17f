"""The import rule of docs/architecture.md is enforced: import-linter's contracts hold, and they fail
when a view imports the database layer, or the runtime imports the services."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
pytestmark = pytest.mark.nodb


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)})


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 5 kept, 0 broken." in result.stdout


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    """The packages and the contracts, copied (without the static files) to break them safely."""
    tree = tmp_path_factory.mktemp("layers")
    for name in ("engine", "webui", "storage"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns(
            "static", "templates", "translations", "__pycache__", "*.db"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


@pytest.mark.parametrize("module, line, broken", [
    ("webui/views/tasks.py", "from storage.models import Case", "Views never touch the database"),
    ("webui/api/routes.py", "import sqlalchemy", "Views never touch the database"),
    ("webui/public/views.py", "from SpiffWorkflow.bpmn import BpmnWorkflow", "Only the SpiffWorkflow adapter"),
    ("engine/core/cases.py", "from engine.services import editing", "Layers"),
    ("engine/services/reads.py", "import webui", "Nothing imports webui"),
    ("engine/trailcheck.py", "import engine.core.audit", "standard library only"),
])
def test_a_forbidden_import_breaks_the_build(copy, module, line, broken):
    path = copy / module
    original = path.read_text(encoding="utf-8")
    path.write_text(original + f"\n{line}  # added by the test\n", encoding="utf-8")
    try:
        result = lint_imports(copy)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode != 0
    assert any(broken in ln and "BROKEN" in ln for ln in result.stdout.splitlines()), result.stdout[-2000:]
