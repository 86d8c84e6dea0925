"""Runs the editor's DOM-free model tests (tests/web/js/*.test.mjs) with node's built-in runner.

The model modules (document, history, formats, PNG metadata, types, search, seed control) are
plain ES modules; node imports them directly, no npm packages involved.
"""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_model_modules_pass_their_node_tests():
    node = shutil.which("node")
    assert node, "node (>= 18) is needed to run the editor's model tests: install Debian's nodejs package"
    result = subprocess.run([node, "--test", "tests/web/js/"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
