"""Submodules reached as attributes, as ComfyUI's start-up leaves them.

ComfyUI imports most of its packages' modules before any pack loads, so packs write
``import comfy`` and then use ``comfy.ldm.models.autoencoder.AutoencoderKL`` without importing the
submodule. A facade package does ``__getattr__ = submodule_getattr(__name__)`` (PEP 562): a
submodule is imported the first time it is reached that way.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def submodule_getattr(package: str) -> Callable[[str], Any]:
    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{package}.{name}":
                raise  # the submodule exists and itself failed to import: say so
            raise AttributeError(f"module {package!r} has no attribute {name!r} "
                                 f"(ComfyUI's {package}.{name} is not provided by Weft)") from None

    return __getattr__
