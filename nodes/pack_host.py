"""What Weft lends to third-party node packs, and the one place that installs ComfyUI's facade.

ComfyUI's Python surface (``folder_paths``, ``comfy.*``, ``comfy_api``, ``latent_preview``,
``node_helpers``, ``execution``, ``comfy_execution``, ``comfy_extras``) is process-global by nature:
packs read ``folder_paths.models_dir`` at import time and mutate ``folder_names_and_paths``.
Those modules live in the top-level ``facade/`` folder as thin translations onto Weft's own
objects. Weft's code never imports them; :func:`install_comfy_facade` puts that folder on
``sys.path`` and hands it one :class:`PackHost`, the server's objects the facade translates to.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.context import InterruptFlag
from graph.registry import NodeRegistry
from nodes.services import Services

#: The folder whose modules packs import under ComfyUI's names.
FACADE_ROOT = Path(__file__).resolve().parent.parent / "facade"


@dataclass
class PackHost:
    """The server's objects as node packs see them through the facade."""

    services: Services
    registry: NodeRegistry
    #: The executor's interrupt flag (``nodes.interrupt_processing`` outside a running node).
    interrupt: InterruptFlag = field(default_factory=InterruptFlag)
    #: ``api.compat.PromptServer`` (``server.PromptServer.instance``); None without an HTTP server.
    prompt_server: Any = None
    #: The parsed command-line flags (``comfy.cli_args.args`` reads them by ComfyUI's names).
    args: Any = None


def install_comfy_facade(host: PackHost) -> None:
    """Make ComfyUI's module names importable and bind them to ``host`` (idempotent; a later call
    rebinds, as a test that builds a second server does)."""
    root = str(FACADE_ROOT)
    if root not in sys.path:
        # Behind the repository root (server.py, nodes/) and before site-packages, so a pip
        # package that happens to be called ``comfy`` cannot shadow the facade.
        sys.path.insert(1 if sys.path and sys.path[0] in ("", str(FACADE_ROOT.parent)) else 0, root)
    legacy = str(FACADE_ROOT / "comfy")
    if legacy not in sys.path:
        # ComfyUI also puts its comfy/ folder on sys.path, and older packs rely on it
        # (``import model_management``). Last here, so those names never shadow Weft's own
        # packages (the facade has an ``ldm`` of its own) or an installed library.
        sys.path.append(legacy)
    importlib.import_module("_weft_binding").bind(host)
    # ComfyUI's names in its `nodes` module (MAX_RESOLUTION, NODE_CLASS_MAPPINGS, core classes):
    # Weft's `nodes` package answers them through a module __getattr__ the facade provides.
    importlib.import_module("_weft_nodes_names").install(importlib.import_module("nodes"))
