"""Fixtures for ComfyUI's facade: a Weft studio with the facade installed and bound to it, and a
loader for the small test packs under ``tests/facade/packs/`` (written here, in the way real packs
use each facade module).

``pack_studio`` gives a :class:`PackStudio`: tiny SD1 checkpoint in ``models/checkpoints``,
built-in nodes registered, a CPU float32 engine, the facade bound to it; ``load(*names)`` imports
test packs through Weft's real pack loader; ``run(prompt)`` executes an API prompt.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from graph.executor import Executor, ExecutionOutcome
from graph.folders import FolderPaths
from graph.registry import NodeRegistry
from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.tiny import write_tiny_checkpoint
from nodes import register_builtin_nodes
from nodes.custom import PackReport, load_custom_packs
from nodes.pack_host import PackHost, install_comfy_facade
from nodes.services import NodeOptions, Services

PACKS_DIR = Path(__file__).parent / "packs"


@pytest.fixture(scope="session")
def tiny_sd1(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("facade-checkpoints")
    path = folder / "tiny_sd1.safetensors"
    write_tiny_checkpoint(path, "sd1", seed=0)
    return path


@dataclass
class PackStudio:
    host: PackHost
    base: Path
    events: list = field(default_factory=list)

    @property
    def registry(self) -> NodeRegistry:
        return self.host.registry

    @property
    def services(self) -> Services:
        return self.host.services

    def load(self, *names: str) -> list[PackReport]:
        """Copy test packs (files or folders of tests/facade/packs) into custom_nodes and load them."""
        target = self.base / "custom_nodes"
        target.mkdir(exist_ok=True)
        for name in names:
            source = PACKS_DIR / name
            if source.is_dir():
                shutil.copytree(source, target / name, dirs_exist_ok=True)
            else:
                shutil.copy(source, target / name)
        wanted = {Path(n).stem for n in names}
        return load_custom_packs([target], self.registry, whitelist=wanted, host=self.host)

    def executor(self) -> Executor:
        return Executor(self.registry, services=self.services, interrupt=self.host.interrupt,
                        emit=lambda event, data: self.events.append((event, data)))

    def execute(self, prompt: dict) -> ExecutionOutcome:
        outputs = [node_id for node_id, node in prompt.items()
                   if self.registry.get(node["class_type"]).output_node]
        return self.executor().execute("facade-test", prompt, outputs)

    def run(self, prompt: dict) -> ExecutionOutcome:
        """Execute ``prompt``; any outcome but success fails the test with the node's error."""
        outcome = self.execute(prompt)
        if outcome.status != "success":
            error = outcome.messages[-1][1]
            raise AssertionError(f"{outcome.status}: {error.get('node_type')} {error.get('exception_type')}: "
                                 f"{error.get('exception_message')}\n" + "".join(error.get("traceback", [])))
        return outcome


@pytest.fixture
def pack_studio(tmp_path, tiny_sd1) -> PackStudio:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    folders = FolderPaths.under(tmp_path)
    folders.ensure()
    shutil.copy(tiny_sd1, folders.model_roots("checkpoints")[0] / tiny_sd1.name)
    engine = Engine(detect_compute("cpu", force_dtype=torch.float32))
    services = Services(folders=folders, options=NodeOptions(preview_method="none"), engine=engine)
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    host = PackHost(services=services, registry=registry)
    install_comfy_facade(host)
    yield PackStudio(host=host, base=tmp_path)
    torch.set_num_threads(before)
