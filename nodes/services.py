"""The services a built-in node may use, built once by the server and handed down.

Nodes reach them through the executor's context (``graph.context``), never through module
globals, so tests can run nodes against temporary folders and a CPU-only engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graph.context import require_context
from graph.folders import FolderPaths


@dataclass
class NodeOptions:
    """Server flags that change what nodes do."""

    disable_metadata: bool = False
    preview_method: str = "auto"  # none | auto | latent2rgb | taesd
    preview_size: int = 512


@dataclass
class Services:
    folders: FolderPaths
    options: NodeOptions = field(default_factory=NodeOptions)
    engine: Any = None  # the diffusion engine (ldm): model memory, devices, dtypes


def services() -> Services:
    """The services of the running prompt (raises outside execution)."""
    found = require_context().services
    if not isinstance(found, Services):
        raise RuntimeError("the executor was started without node services")
    return found
