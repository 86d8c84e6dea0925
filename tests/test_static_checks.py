"""ruff and mypy over graph/ and api/ (configuration: pyproject.toml), so `make test` keeps them clean."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKS = {
    "ruff": [sys.executable, "-m", "ruff", "check", "graph", "api"],
    "mypy": [sys.executable, "-m", "mypy", "graph", "api"],
}


@pytest.mark.parametrize("tool", sorted(CHECKS))
def test_static_check_passes(tool: str) -> None:
    done = subprocess.run(CHECKS[tool], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, (f"`{' '.join(CHECKS[tool][1:])}` failed (exit {done.returncode}; "
                                  f"requirements-dev.txt pins it):\n{done.stdout}{done.stderr}")
