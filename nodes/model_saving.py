"""Saving models, latents and conditionings, and loading the latter two back.

ComfyUI's ``ModelSave``, ``CLIPSave``, ``VAESave`` (``nodes_model_merging.py``), ``LoraSave``
(``nodes_lora_extract.py``), ``SaveLatent`` / ``LoadLatent`` (``nodes.py``) and
``SaveConditioning`` / ``ConditioningLoader`` (``nodes_cond.py``). Files go to the output folder
under ComfyUI's numbered names (``<prefix>_00001_.safetensors``), prefixes are checked by
:mod:`graph.output_files`; what the files hold is :mod:`ldm.loading.saving`'s.

``.latent`` files are safetensors with ``latent_tensor`` and an empty ``latent_format_version_0``
marker; a file without the marker is from before ComfyUI stored raw latents and is read as
``latent_tensor / 0.18215``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from graph.folders import UnsafePathError
from graph.output_files import SaveTarget, resolve_save_target
from ldm.loading import saving
from ldm.loading.checkpoint import load_state_dict, save_state_dict
from nodes.image import annotated_path
from nodes.services import model_names, running_services, services

_HIDDEN = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
LATENT_EXTENSION = "latent"
LATENT_MARKER = "latent_format_version_0"
#: The SD1 latent scale old ``.latent`` files were stored with.
LEGACY_LATENT_SCALE = 0.18215


def output_file(filename_prefix: str, extension: str) -> tuple[Path, SaveTarget, int]:
    """``(path, target, counter)`` of the next free numbered file for ``filename_prefix`` in the
    output folder; raises UnsafePathError for prefixes that would leave it."""
    target = resolve_save_target(services().folders.output, filename_prefix)
    counter = target.counter
    while (path := target.folder / target.file_name(counter, 0, extension)).exists():
        counter += 1
    return path, target, counter


def run_metadata(prompt, extra_pnginfo, **extra: str) -> dict[str, str]:
    """What ComfyUI's savers write into a file's metadata: the prompt and the workflow; nothing
    with ``--disable-metadata``."""
    if services().options.disable_metadata:
        return {}
    metadata = {**extra, "prompt": "" if prompt is None else json.dumps(prompt)}
    for key, value in (extra_pnginfo or {}).items():
        metadata[key] = json.dumps(value)
    return metadata


class ModelFileSave:
    """What ComfyUI's model savers share (``ModelSave``, ``CLIPSave``, ``VAESave``,
    ``CheckpointSave``): output nodes under advanced/model_merging whose ``save`` writes files to the
    output folder and returns nothing; :meth:`inputs` gives their inputs."""

    CATEGORY = "advanced/model_merging"
    FUNCTION = "save"
    RETURN_TYPES = ()
    OUTPUT_NODE = True

    @staticmethod
    def inputs(sockets: dict[str, str], default_prefix: str) -> dict:
        """``sockets`` (input name -> type), then ``filename_prefix``; the prompt and workflow hidden."""
        return {"required": {**{name: (kind,) for name, kind in sockets.items()},
                             "filename_prefix": ("STRING", {"default": default_prefix})},
                "hidden": _HIDDEN}


class ModelSave(ModelFileSave):
    @classmethod
    def INPUT_TYPES(cls):
        return cls.inputs({"model": "MODEL"}, "diffusion_models/ComfyUI")

    def save(self, model, filename_prefix, prompt=None, extra_pnginfo=None):
        path, target, counter = output_file(filename_prefix, "safetensors")
        saving.save_checkpoint(path, model, metadata=run_metadata(prompt, extra_pnginfo),
                               title=f"{target.filename} {counter}")
        return {}


class CLIPSave(ModelFileSave):
    @classmethod
    def INPUT_TYPES(cls):
        return cls.inputs({"clip": "CLIP"}, "clip/ComfyUI")

    def save(self, clip, filename_prefix, prompt=None, extra_pnginfo=None):
        metadata = run_metadata(prompt, extra_pnginfo, format="pt")
        # One file per text tower, named after it: clip/ComfyUI_clip_l_00001_.safetensors.
        for kind, weights in saving.clip_towers(clip).items():
            path, _, _ = output_file(f"{filename_prefix}_{kind}", "safetensors")
            save_state_dict(path, weights, metadata)
        return {}


class VAESave(ModelFileSave):
    @classmethod
    def INPUT_TYPES(cls):
        return cls.inputs({"vae": "VAE"}, "vae/ComfyUI_vae")

    def save(self, vae, filename_prefix, prompt=None, extra_pnginfo=None):
        path, _, _ = output_file(filename_prefix, "safetensors")
        save_state_dict(path, saving.vae_state_dict(vae), run_metadata(prompt, extra_pnginfo))
        return {}


class LoraSave:
    CATEGORY = "_for_testing"
    FUNCTION = "save"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"filename_prefix": ("STRING", {"default": "loras/ComfyUI_extracted_lora"}),
                             "rank": ("INT", {"default": 8, "min": 1, "max": 4096, "step": 1}),
                             "lora_type": (list(saving.LORA_TYPES),),
                             "bias_diff": ("BOOLEAN", {"default": True})},
                "optional": {"model_diff": ("MODEL", {"tooltip": "The ModelSubtract output to be converted to a lora."}),
                             "text_encoder_diff": ("CLIP", {"tooltip": "The CLIPSubtract output to be converted to a lora."})}}

    def save(self, filename_prefix, rank, lora_type, bias_diff, model_diff=None, text_encoder_diff=None):
        if model_diff is None and text_encoder_diff is None:
            return {}
        lora_sd = {}
        if model_diff is not None:
            lora_sd.update(saving.extract_model_lora(model_diff, rank, lora_type, bias_diff))
        if text_encoder_diff is not None:
            lora_sd.update(saving.extract_clip_lora(text_encoder_diff, rank, lora_type, bias_diff))
        path, _, _ = output_file(filename_prefix, "safetensors")
        save_state_dict(path, lora_sd)
        return {}


class SaveLatent:
    """Writes the latent and passes it on unchanged (ComfyUI's newest ``SaveLatent`` has an output)."""

    CATEGORY = "model/latent"
    FUNCTION = "save"
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("samples",)
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "filename_prefix": ("STRING", {"default": "latents/ComfyUI"})},
                "hidden": _HIDDEN}

    def save(self, samples, filename_prefix="ComfyUI", prompt=None, extra_pnginfo=None):
        path, target, _ = output_file(filename_prefix, LATENT_EXTENSION)
        tensors = {"latent_tensor": samples["samples"], LATENT_MARKER: torch.tensor([])}
        save_state_dict(path, tensors, run_metadata(prompt, extra_pnginfo))
        return {"ui": {"latents": [{"filename": path.name, "subfolder": target.subfolder, "type": "output"}]},
                "result": (samples,)}


def _input_latents() -> list[str]:
    found = running_services()
    if found is None or not found.folders.input.is_dir():
        return []
    return sorted(p.name for p in found.folders.input.iterdir()
                  if p.is_file() and p.name.endswith("." + LATENT_EXTENSION))


def _latent_path(name: str) -> Path:
    try:
        path = annotated_path(services().folders, name)
    except UnsafePathError:
        path = None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"Invalid latent file: {name}")
    return path


class LoadLatent:
    CATEGORY = "model/latent"
    FUNCTION = "load"
    RETURN_TYPES = ("LATENT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"latent": (_input_latents(),)}}

    def load(self, latent):
        tensors, _ = load_state_dict(_latent_path(latent))
        scale = 1.0 if LATENT_MARKER in tensors else 1.0 / LEGACY_LATENT_SCALE
        return ({"samples": tensors["latent_tensor"].float() * scale},)

    @classmethod
    def IS_CHANGED(cls, latent):
        return hashlib.sha256(_latent_path(latent).read_bytes()).hexdigest()

    @classmethod
    def VALIDATE_INPUTS(cls, latent):
        if running_services() is None:  # checked again when the node runs
            return True
        try:
            _latent_path(latent)
        except FileNotFoundError as exc:
            return str(exc)
        return True


class SaveConditioning:
    DESCRIPTION = ("Saves a conditioning to the output folder as safetensors; move the file to models/embeddings "
                   "to load it with Load Conditioning, e.g. to skip the text encoder.")
    CATEGORY = "model/conditioning"
    FUNCTION = "save"
    RETURN_TYPES = ("CONDITIONING",)
    RETURN_NAMES = ("conditioning",)
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",),
                             "filename_prefix": ("STRING", {"default": "conditioning/ComfyUI"})}}

    def save(self, conditioning, filename_prefix):
        if len(conditioning) != 1:
            raise ValueError("Save Conditioning supports a single conditioning entry, save it before combining.")
        cond, options = conditioning[0]
        tensors, values = {"conditioning": cond}, {}
        for key, value in options.items():
            if isinstance(value, torch.Tensor):
                tensors[key] = value
            elif isinstance(value, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in value):
                tensors.update({f"{key}.{i}": t for i, t in enumerate(value)})
            elif isinstance(value, (bool, int, float, str)):
                values[key] = value
            elif value is not None:
                raise ValueError(f"Conditioning option '{key}' ({type(value).__name__}) can't be saved.")
        path, _, _ = output_file(filename_prefix, "safetensors")
        save_state_dict(path, tensors, {"conditioning_options": json.dumps(values)})
        return (conditioning,)


class ConditioningLoader:
    DESCRIPTION = ("Loads a conditioning saved with Save Conditioning, or any safetensors file with a "
                   "'conditioning' tensor, from the embeddings folder.")
    CATEGORY = "model/loaders"
    FUNCTION = "load"
    RETURN_TYPES = ("CONDITIONING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning_name": (model_names("embeddings"),)}}

    def load(self, conditioning_name):
        tensors, metadata = load_state_dict(services().folders.model_path("embeddings", conditioning_name))
        tensors = dict(tensors)
        if "conditioning" not in tensors:
            raise ValueError(f"{conditioning_name} holds no 'conditioning' tensor (not a saved conditioning)")
        cond = tensors.pop("conditioning")
        options = json.loads(metadata.get("conditioning_options", "{}"))
        # "key.0", "key.1" … are the items of a list of tensors, in order.
        lists: dict[str, dict[int, torch.Tensor]] = {}
        for key, value in tensors.items():
            name, _, index = key.rpartition(".")
            if index.isdigit():
                lists.setdefault(name, {})[int(index)] = value
            else:
                options[key] = value
        options.update({name: [items[i] for i in sorted(items)] for name, items in lists.items()})
        return ([[cond, options]],)


NODE_CLASS_MAPPINGS = {
    "ModelSave": ModelSave,
    "CLIPSave": CLIPSave,
    "VAESave": VAESave,
    "LoraSave": LoraSave,
    "SaveLatent": SaveLatent,
    "LoadLatent": LoadLatent,
    "SaveConditioning": SaveConditioning,
    "ConditioningLoader": ConditioningLoader,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "LoraSave": "Extract and Save Lora",
    "SaveLatent": "Save Latent",
    "LoadLatent": "Load Latent",
    "SaveConditioning": "Save Conditioning",
    "ConditioningLoader": "Load Conditioning",
}
