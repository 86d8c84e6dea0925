"""ComfyUI's ``comfy_api`` package as node packs import it: the V3 node API.

``comfy_api.latest`` holds the implementation (``io``, ``ui``, ``ComfyExtension``); the versioned
names packs pin (``v0_0_1``, ``v0_0_2``, ``v0_0_3``) are the same objects. A V3 node class also
presents the V1 protocol (``INPUT_TYPES``, ``RETURN_TYPES``, ``FUNCTION`` …) computed from its
schema, so Weft's registry, validator and executor run it like any other node; see
``comfy_api.latest._node`` and docs/node-packs.md.
"""

from _weft_lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
