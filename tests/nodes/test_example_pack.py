"""The shipped example pack loads through the pack loader and its node works."""

from pathlib import Path

import torch

from graph.registry import NodeRegistry
from graph.validation import validate_prompt
from nodes import register_builtin_nodes
from nodes.custom import load_custom_packs

REPO = Path(__file__).resolve().parents[2]


def test_example_pack_loads_and_tints():
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    [report] = load_custom_packs([REPO / "custom_nodes"], registry, whitelist={"example_pack"})
    assert report.loaded and report.nodes == ["ExampleColourTint"]
    assert Path(report.web_directory, "colour-widget.js").is_file()
    info = registry.node_info("ExampleColourTint")
    assert info["display_name"] == "Colour Tint (example pack)"
    assert info["input"]["required"]["colour"] == ("COLOR", {"default": "#ff8800"})

    node = registry.get("ExampleColourTint").node_class()
    image = torch.zeros(1, 2, 2, 3)
    (out,) = node.tint(image, "#ff0000", 0.5)
    assert torch.allclose(out[0, 0, 0], torch.tensor([0.5, 0.0, 0.0]))

    bad = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
           "2": {"class_type": "ExampleColourTint", "inputs": {"image": ["1", 0], "colour": "red", "strength": 0.5}},
           "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}
    result = validate_prompt(bad, registry)
    assert result.node_errors["2"]["errors"][0]["type"] == "custom_validation_failed"
