"""``comfy_extras.nodes_*``: ComfyUI's extra node modules, answered from Weft's core nodes.

Packs import node classes from these modules (``from comfy_extras.nodes_custom_sampler import
SamplerCustom``, ``comfy_extras.nodes_mask.GrowMask``). Each module of ComfyUI's list below exists
here as a module whose attributes are Weft's core node classes by node name; a name Weft has no
core node for raises an ImportError that says so. Helper functions of those modules are not
provided (docs/node-packs.md).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types

#: ComfyUI's ``comfy_extras`` node modules (names only).
MODULES = frozenset({
    "nodes_ace",
    "nodes_advanced_samplers",
    "nodes_align_your_steps",
    "nodes_apg",
    "nodes_attention_multiply",
    "nodes_audio",
    "nodes_audio_encoder",
    "nodes_camera_trajectory",
    "nodes_canny",
    "nodes_cfg",
    "nodes_chroma_radiance",
    "nodes_clip_sdxl",
    "nodes_compositing",
    "nodes_cond",
    "nodes_context_windows",
    "nodes_controlnet",
    "nodes_cosmos",
    "nodes_custom_sampler",
    "nodes_differential_diffusion",
    "nodes_easycache",
    "nodes_edit_model",
    "nodes_eps",
    "nodes_flux",
    "nodes_freelunch",
    "nodes_fresca",
    "nodes_gits",
    "nodes_hidream",
    "nodes_hooks",
    "nodes_hunyuan",
    "nodes_hunyuan3d",
    "nodes_hypernetwork",
    "nodes_hypertile",
    "nodes_images",
    "nodes_ip2p",
    "nodes_latent",
    "nodes_load_3d",
    "nodes_lora_extract",
    "nodes_lotus",
    "nodes_lt",
    "nodes_lumina2",
    "nodes_mahiro",
    "nodes_mask",
    "nodes_mochi",
    "nodes_model_advanced",
    "nodes_model_downscale",
    "nodes_model_merging",
    "nodes_model_merging_model_specific",
    "nodes_model_patch",
    "nodes_morphology",
    "nodes_optimalsteps",
    "nodes_pag",
    "nodes_perpneg",
    "nodes_photomaker",
    "nodes_pixart",
    "nodes_post_processing",
    "nodes_preview_any",
    "nodes_primitive",
    "nodes_qwen",
    "nodes_rebatch",
    "nodes_sag",
    "nodes_sd3",
    "nodes_sdupscale",
    "nodes_slg",
    "nodes_stable3d",
    "nodes_stable_cascade",
    "nodes_string",
    "nodes_tcfg",
    "nodes_tomesd",
    "nodes_torch_compile",
    "nodes_train",
    "nodes_upscale_model",
    "nodes_video",
    "nodes_video_model",
    "nodes_wan",
    "nodes_webcam",
})


def _core_node(module_name: str, name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    from _weft_binding import host

    registry = host().registry
    if not registry.is_core(name):
        raise AttributeError(f"module {module_name!r} has no attribute {name!r} "
                             f"(Weft provides ComfyUI's core node classes here, and {name!r} is not one of its nodes)")
    return registry.get(name).node_class


class _ExtrasModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        prefix, _, leaf = fullname.partition(".")
        if prefix == __name__ and leaf in MODULES:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name, f"ComfyUI's {spec.name}: Weft's core node classes by node name.")
        module.__getattr__ = lambda name, _module=spec.name: _core_node(_module, name)
        return module

    def exec_module(self, module):
        """Nothing to run: attributes are looked up on use."""


if not any(isinstance(finder, _ExtrasModules) for finder in sys.meta_path):
    sys.meta_path.append(_ExtrasModules())
