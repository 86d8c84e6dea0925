"""End-to-end fixtures: ComfyUI API prompts run through the real executor, node registry and tiny
checkpoints of every family, on an fp32 CPU engine (so results are deterministic).

``studio`` gives a :class:`Studio`: ``run(prompt)`` executes an API prompt, fails the test on any
execution error and returns the saved images' paths; ``pixels(path)`` reads a PNG back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy
import pytest
import torch
from PIL import Image

from graph.executor import Executor
from graph.folders import FolderPaths
from graph.png_metadata import read_text
from graph.registry import NodeRegistry
from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.tiny import write_tiny_checkpoint
from nodes import register_builtin_nodes
from nodes.services import NodeOptions, Services

FAMILIES = ("sd1", "sd1_inpaint", "sd2_v", "sdxl", "sdxl_refiner", "sd_x4")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run faster on one thread: intra-op threading only adds synchronisation here, and
    on a loaded machine spinning worker threads cost several times the work (measured 1.8 s vs
    15.9 s for the default prompt with 2 threads beside other jobs). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> Path:
    """One tiny checkpoint per family (with text encoders), written once: ``tiny_<family>.safetensors``."""
    folder = tmp_path_factory.mktemp("checkpoints")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for family in FAMILIES:
            write_tiny_checkpoint(folder / f"tiny_{family}.safetensors", family, seed=0)
    finally:
        torch.set_num_threads(before)
    return folder


@dataclass
class Studio:
    services: Services
    registry: NodeRegistry
    events: list = field(default_factory=list)

    def executor(self) -> Executor:
        return Executor(self.registry, services=self.services,
                        emit=lambda event, data: self.events.append((event, data)))

    def run(self, prompt: dict, executor: Executor | None = None) -> list[Path]:
        """Execute ``prompt`` (a fresh executor unless given one); the saved images, in order."""
        outputs = [node_id for node_id, node in prompt.items()
                   if self.registry.get(node["class_type"]).output_node]
        outcome = (executor or self.executor()).execute("e2e", prompt, outputs)
        if outcome.status != "success":
            error = outcome.messages[-1][1]
            raise AssertionError(f"{outcome.status}: {error.get('node_type')} {error.get('exception_type')}: "
                                 f"{error.get('exception_message')}\n" + "".join(error.get("traceback", [])))
        images = []
        for node_id in outputs:
            for entry in outcome.outputs.get(node_id, {}).get("images", []):
                folder = self.services.folders.folder_for(entry["type"])
                images.append(folder / entry["subfolder"] / entry["filename"])
        return images

    @staticmethod
    def pixels(path: Path) -> numpy.ndarray:
        with Image.open(path) as image:
            return numpy.asarray(image.convert("RGB"))

    @staticmethod
    def prompt_of(path: Path) -> dict:
        """The API prompt in the PNG's ``prompt`` text chunk."""
        return json.loads(read_text(path)["prompt"])

    def input_image(self, name: str, pixels: numpy.ndarray) -> str:
        Image.fromarray(pixels).save(self.services.folders.input / name)
        return name


@pytest.fixture
def studio(tmp_path, tiny_checkpoints) -> Studio:
    folders = FolderPaths.under(tmp_path)
    folders.ensure()
    folders.add_model_root("checkpoints", tiny_checkpoints, first=True)
    engine = Engine(detect_compute("cpu", force_dtype=torch.float32))
    services = Services(folders=folders, options=NodeOptions(preview_method="latent2rgb", preview_size=64),
                        engine=engine)
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    return Studio(services, registry)


def gradient_image(height: int, width: int, seed: int = 0) -> numpy.ndarray:
    """A smooth test picture [H, W, 3] uint8 with some noise (deterministic)."""
    rng = numpy.random.default_rng(seed)
    ys, xs = numpy.mgrid[0:height, 0:width]
    rgb = numpy.stack([xs / max(width - 1, 1), ys / max(height - 1, 1), 0.5 + 0.0 * xs], axis=-1)
    rgb = rgb * 200 + rng.integers(0, 40, size=rgb.shape)
    return rgb.clip(0, 255).astype(numpy.uint8)


def write_tiny_lora(path: Path, checkpoint: Path, rank: int = 4, seed: int = 0) -> Path:
    """A kohya-style LoRA (``lora_unet_…``, ``lora_te_…``) for every attention projection of a tiny
    SD1 checkpoint's UNet and text encoder, with up/down/alpha tensors of rank ``rank``."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    weights = {}
    with safe_open(checkpoint, "pt") as handle:
        for key in handle.keys():
            for prefix, lora_prefix in (("model.diffusion_model.", "lora_unet_"),
                                        ("cond_stage_model.transformer.", "lora_te_")):
                if not key.startswith(prefix) or not key.endswith(("to_q.weight", "to_v.weight",
                                                                     "q_proj.weight", "v_proj.weight")):
                    continue
                out_features, in_features = handle.get_slice(key).get_shape()
                module = key[len(prefix):-len(".weight")].replace(".", "_")
                weights[f"{lora_prefix}{module}.lora_up.weight"] = torch.randn(out_features, rank, generator=generator)
                weights[f"{lora_prefix}{module}.lora_down.weight"] = torch.randn(rank, in_features, generator=generator)
                weights[f"{lora_prefix}{module}.alpha"] = torch.tensor(float(rank))
    assert weights, "no attention projections found"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(path))
    return path
