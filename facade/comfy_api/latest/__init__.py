"""``comfy_api.latest``: ComfyUI's V3 node API.

Packs import ``from comfy_api.latest import ComfyExtension, io, ui`` (or ``IO`` / ``UI``), define
``io.ComfyNode`` subclasses, and export ``comfy_entrypoint()`` returning a :class:`ComfyExtension`
whose ``get_node_list()`` lists them. ``ComfyAPI`` / ``ComfyAPISync`` give
``execution.set_progress``, which reports to the running node's progress bar.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from graph.context import current_context, report_progress

from . import _io as io
from . import _ui as ui
from ._video_types import InputImpl, Types

IO = io
UI = ui
comfy_io = io  # an alias of some releases


class ComfyExtension(ABC):
    """What a pack's ``comfy_entrypoint()`` returns (that function may be ``async``)."""

    async def on_load(self) -> None:
        """Called once when the pack is loaded, before ``get_node_list``."""

    @abstractmethod
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        """The pack's node classes."""


class Input:
    """Type names for annotations: ``Input.Image`` is an IMAGE value, and so on."""

    Image = torch.Tensor
    Mask = torch.Tensor
    Latent = dict
    Audio = dict


def _preview(image: Any) -> Any:
    """A PIL image for the progress preview (the first of a batch tensor)."""
    if isinstance(image, torch.Tensor):
        from PIL import Image as PILImage

        from ldm.imaging.image_io import to_8bit

        return PILImage.fromarray(to_8bit(image[0] if image.ndim == 4 else image))
    return image


def _set_progress(value: float, max_value: float, node_id: str | None, preview_image: Any) -> None:
    context = current_context()
    if context is None or not context.node_id:
        if node_id is None:
            raise ValueError("node_id must be provided if not in executing context")
        return  # no node of this worker is running: nothing shows the bar
    report_progress(value, max_value, _preview(preview_image) if preview_image is not None else None)


class ComfyAPI_latest:
    VERSION = "latest"
    STABLE = False

    class Execution:
        async def set_progress(self, value: float, max_value: float, node_id: str | None = None,
                               preview_image: Any = None, ignore_size_limit: bool = False) -> None:
            _set_progress(value, max_value, node_id, preview_image)

    def __init__(self) -> None:
        self.execution = self.Execution()


class ComfyAPISync:
    """``ComfyAPI`` with plain (not ``async``) methods."""

    VERSION = "latest"
    STABLE = False

    class Execution:
        def set_progress(self, value: float, max_value: float, node_id: str | None = None,
                         preview_image: Any = None, ignore_size_limit: bool = False) -> None:
            _set_progress(value, max_value, node_id, preview_image)

    def __init__(self) -> None:
        self.execution = self.Execution()


ComfyAPI = ComfyAPI_latest

__all__ = ["ComfyAPI", "ComfyAPISync", "Input", "InputImpl", "Types", "ComfyExtension", "io", "IO", "comfy_io", "ui", "UI"]
