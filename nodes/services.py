"""The services a built-in node may use, built once by the server and handed down.

Nodes reach them through the executor's context (``graph.context``), never through module
globals, so tests can run nodes against temporary folders and a CPU-only engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from graph.context import current_context, require_context
from graph.folders import FolderPaths
from ldm.engine import Engine
from ldm.memory import admission


@dataclass
class NodeOptions:
    """Server flags that change what nodes do."""

    disable_metadata: bool = False
    preview_method: str = "auto"  # none | auto | latent2rgb | taesd
    preview_size: int = 512


@dataclass
class Services:
    """What the server built for nodes: user folders, the diffusion engine (devices, dtypes, model
    memory) and the flags that change what nodes do. The engine is required: a node never has to
    guess whether it may place a model."""

    folders: FolderPaths
    engine: Engine
    options: NodeOptions = field(default_factory=NodeOptions)


def services() -> Services:
    """The services of the running prompt (raises outside execution)."""
    found = require_context().services
    if not isinstance(found, Services):
        raise RuntimeError("the executor was started without node services")
    return found


def preview_method() -> str:
    """How the running job's live previews are made: its own method where the server resolved one
    for it (api.previews), else the server's setting."""
    return require_context().preview_method or services().options.preview_method


def running_services() -> Services | None:
    """The services of the installed context, or None where there is none: ``INPUT_TYPES`` and
    validation may run outside any (a script, a test registry's ``/object_info``)."""
    found = getattr(current_context(), "services", None)
    return found if isinstance(found, Services) else None


def admit(nbytes: int, what: str, device=None) -> None:
    """Refuse an allocation of ``nbytes`` that cannot fit before it is made
    (:meth:`ldm.engine.Engine.admit`: raises :class:`ldm.memory.AdmissionError`, a MemoryError);
    outside a running prompt (a script calling a node's method) nothing is checked."""
    found = running_services()
    if found is not None:
        found.engine.admit(nbytes, what, device)


def admit_tensor(what: str, shape, dtype=None, device=None) -> None:
    """:func:`admit` for a tensor of ``shape`` (float32 unless ``dtype``): the error reads
    "<what> of 80×4×2048×2048 float32 needs 5.4 GB; …"."""
    if running_services() is None:
        return
    dtype = dtype or torch.float32
    admit(admission.tensor_bytes(shape, dtype), f"{what} of {admission.describe_tensor(shape, dtype)}", device)


def model_names(kind: str) -> list[str]:
    """The files of a model folder for a combo; none where no services are installed."""
    found = running_services()
    return found.folders.list_models(kind) if found is not None else []
