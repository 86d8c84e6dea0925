"""The editor's socket rule (web/js/model/types.js) and the server's (graph/types.py) are one rule:
both are checked against the same table, this file for Python, tests/web/js/types.test.mjs for JS."""

import json
from pathlib import Path

import pytest

from graph.types import types_compatible

CASES = json.loads((Path(__file__).parent / "fixtures" / "type_cases.json").read_text())["cases"]


@pytest.mark.parametrize("output_type, input_type, expected", CASES)
def test_python_rule_matches_shared_table(output_type, input_type, expected):
    assert types_compatible(output_type, input_type) is expected
