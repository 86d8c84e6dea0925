"""``comfy.ldm.util``: the two helpers ComfyUI's model code imports from here."""

from __future__ import annotations

from comfy.ldm.modules.attention import default, exists

__all__ = ["default", "exists"]
