"""Built-in node packs: thin, typed wrappers that turn engine calls into nodes.

Each module of this package is one domain and exports ``NODE_CLASS_MAPPINGS`` (and optionally
``NODE_DISPLAY_NAME_MAPPINGS``), exactly like a third-party pack. :func:`register_builtin_nodes`
registers them all as core nodes, which packs cannot replace.
"""

from __future__ import annotations

import importlib

#: The built-in packs, in the order their nodes appear in ``/object_info``.
BUILTIN_MODULES = (
    "nodes.utils",
    "nodes.loaders",
    "nodes.conditioning",
    "nodes.vae",
    "nodes.latent",
    "nodes.image",
    "nodes.mask",
    "nodes.sampling",
    "nodes.custom_sampling",
    "nodes.model_patches",
    "nodes.inpaint",
    "nodes.ldm_conditioning",
    "nodes.training",
    "nodes.logic",
    "nodes.lists",
    "nodes.text",
    "nodes.latent_ops",
    "nodes.image_edit",
    "nodes.image_color",
    "nodes.image_tools",
    "nodes.image_save",
    "nodes.image_layers",
    "nodes.image_compositing",
    "nodes.preprocessors",
    "nodes.controlnet",
    "nodes.upscale_model",
    "nodes.clip_vision",
    "nodes.model_merging",
    "nodes.model_saving",
    "nodes.samplers",
    "nodes.schedulers",
    "nodes.guidance_patches",
    "nodes.attention_patches",
    "nodes.devices",
    "nodes.hooks",
    "nodes.datasets",
    "nodes.lora_training",
)


def register_builtin_nodes(registry, modules=BUILTIN_MODULES) -> None:
    """Register every built-in node; a malformed built-in node is a bug and raises."""
    for module_name in modules:
        module = importlib.import_module(module_name)
        rejected = registry.register_mappings(
            module.NODE_CLASS_MAPPINGS,
            getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", {}),
            python_module="nodes", core=True)
        if rejected:
            raise RuntimeError(f"built-in nodes of {module_name} are malformed: {rejected}")
