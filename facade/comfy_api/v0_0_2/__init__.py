"""``comfy_api.v0_0_2``: a pinned version of the V3 API; here the same objects as ``comfy_api.latest``."""

from comfy_api.latest import IO, UI, ComfyAPI, ComfyAPISync, ComfyExtension, Input, io, ui

__all__ = ["ComfyAPI", "ComfyAPISync", "Input", "ComfyExtension", "io", "IO", "ui", "UI"]
