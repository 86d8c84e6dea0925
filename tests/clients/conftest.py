"""A real Weft server process with the shipped starter model, for the PyPI API clients."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.api.conftest import ServerProcess
from tests.e2e.prompts import default_txt2img

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "models" / "checkpoints" / "weft-starter.safetensors"


def starter_base(folder: Path) -> Path:
    (folder / "models" / "checkpoints").mkdir(parents=True)
    shutil.copy(STARTER, folder / "models" / "checkpoints" / STARTER.name)
    return folder


def starter_prompt(seed: int = 7, steps: int = 4) -> dict:
    """ComfyUI's default workflow on the starter model (128 × 128 latent = a 64 × 64 image), its
    save node titled as ComfyUI's frontend titles it (clients find outputs by title)."""
    prompt = default_txt2img(STARTER.name, seed=seed, steps=steps, size=128)
    prompt["6"]["inputs"]["text"] = "a red circle in the center on a blue background"
    for node in prompt.values():
        node["_meta"] = {"title": {"SaveImage": "Save Image"}.get(node["class_type"], node["class_type"])}
    return prompt


@pytest.fixture(scope="module")
def starter_server(tmp_path_factory):
    """Weft with default flags, as the clients' users start it."""
    proc = ServerProcess(starter_base(tmp_path_factory.mktemp("clients"))).start()
    yield proc
    proc.stop()
