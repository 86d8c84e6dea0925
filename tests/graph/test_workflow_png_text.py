"""The workflow / prompt a PNG's text chunks carry (graph/workflow/png_text.py)."""

from __future__ import annotations

import json
from pathlib import Path

from graph.workflow import extract_workflow_from_png_text

FIXTURES = Path(__file__).parent / "fixtures"


def chunk(name: str) -> str:
    return json.dumps(json.loads((FIXTURES / f"{name}.json").read_text()))


def test_both_chunks_are_parsed():
    found = extract_workflow_from_png_text({"prompt": chunk("t2i_expected"), "workflow": chunk("t2i_v04")})
    assert found["workflow"]["last_node_id"] == 9
    assert found["prompt"]["3"]["class_type"] == "KSampler"


def test_workflow_alone_or_prompt_alone():
    only_workflow = extract_workflow_from_png_text({"workflow": chunk("t2i_v1")})
    assert only_workflow["prompt"] is None and only_workflow["workflow"]["version"] == 1
    only_prompt = extract_workflow_from_png_text({"prompt": chunk("t2i_expected")})
    assert only_prompt["workflow"] is None and "9" in only_prompt["prompt"]


def test_other_text_and_broken_json_count_as_absent():
    assert extract_workflow_from_png_text({}) is None
    assert extract_workflow_from_png_text({"parameters": "a cat, Steps: 20, Sampler: Euler"}) is None
    assert extract_workflow_from_png_text({"workflow": "{not json", "prompt": "[]"}) is None
    assert extract_workflow_from_png_text({"workflow": chunk("t2i_expected")}) is None  # not a UI workflow
    assert extract_workflow_from_png_text("workflow") is None


def test_bytes_and_nan_as_python_writes_them():
    text = '{"1": {"class_type": "PrimitiveFloat", "inputs": {"value": NaN}}}'
    found = extract_workflow_from_png_text({"prompt": text.encode("utf-8")})
    assert found["prompt"]["1"]["class_type"] == "PrimitiveFloat"
