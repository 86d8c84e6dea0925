"""nodes.docs: docs/nodes.md is what the generator writes from today's registry."""

from __future__ import annotations

from pathlib import Path

from graph.registry import NodeRegistry
from nodes.docs import REGENERATE, builtin_reference, render
from nodes import sampling

DOCS = Path(__file__).resolve().parents[2] / "docs" / "nodes.md"


def test_committed_node_reference_is_current():
    expected = builtin_reference()
    committed = DOCS.read_text(encoding="utf-8") if DOCS.exists() else ""
    assert committed == expected, (
        f"docs/nodes.md is out of date with the node registry; regenerate it with `{REGENERATE}` "
        "and commit the result")


def test_reference_lists_inputs_outputs_and_categories():
    registry = NodeRegistry()
    registry.register_mappings(sampling.NODE_CLASS_MAPPINGS, sampling.NODE_DISPLAY_NAME_MAPPINGS, core=True)
    text = render(registry)
    assert "## model/sampling" in text and "### KSampler (Advanced) (`KSamplerAdvanced`)" in text
    assert "| `steps` | `INT` | `20` | min 1, max 10000 | The number of steps used in the denoising process. |" in text
    assert "| `add_noise` | combo | `enable` | `enable`, `disable` |  |" in text
    assert "Outputs: `LATENT` — The denoised latent." in text
    assert "2 nodes in 1 categories." in text
