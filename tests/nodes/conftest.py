"""Fixtures for node tests: temporary user folders and the executor context nodes run in."""

from __future__ import annotations

import pytest

from graph.context import ExecutionContext, InterruptFlag, use_context
from graph.folders import FolderPaths
from ldm.devices import detect_compute
from ldm.engine import Engine
from nodes.services import NodeOptions, Services


def make_services(base, **options) -> Services:
    """Services over fresh input/output/temp folders under ``base``."""
    folders = FolderPaths.under(base)
    folders.ensure()
    return Services(folders=folders, options=NodeOptions(**options), engine=cpu_engine())


def cpu_engine() -> Engine:
    import torch
    return Engine(detect_compute("cpu", force_dtype=torch.float32))


@pytest.fixture
def node_services(tmp_path):
    """Runs the test inside an execution context whose services use folders under tmp_path."""
    services = make_services(tmp_path)
    context = ExecutionContext(prompt_id="test-prompt", node_id="1", display_node_id="1",
                               services=services, interrupt=InterruptFlag())
    with use_context(context):
        yield services
