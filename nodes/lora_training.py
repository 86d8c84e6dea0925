"""LoRA training nodes, ComfyUI's ``comfy_extras/nodes_train.py``: ``TrainLoraNode`` trains a LoRA
on a MODEL from latents and conditioning (``ldm.training.lora_trainer``), ``LoraModelLoader``
applies the trained weights to a MODEL, ``SaveLoRA`` (and its older id ``SaveLoRANode``) writes
them as a ``.safetensors`` file and ``LossGraphNode`` plots the loss history.

``LORA_MODEL`` is a LoRA state dict (ComfyUI's training naming, which ``ldm.lora.patches`` reads like any
LoRA file); ``LOSS_MAP`` is ``{"loss": [one float per micro-step]}``.
"""

from __future__ import annotations

import dataclasses
import secrets
import string

import numpy as np
import safetensors.torch
import torch

from graph.context import current_context, report_progress
from graph.output_files import next_counter, resolve_save_target, write_numbered
from ldm.loading.checkpoint import load_state_dict
from ldm.lora.patches import load_lora_for_models
from ldm.sampling.from_handle import model_sampling_of
from ldm.sampling.model_conds import CondContext, model_conds_for_family
from ldm.training.lora_trainer import (LOSSES, OPTIMIZERS, LoraTraining, TrainingData, existing_adapters,
                                       steps_in_file_name, train_lora, unet_inputs_for)
from ldm.training.loss_graph import draw_loss_graph
from nodes.image import metadata_chunks, save_png_batch
from nodes.services import services

LORA_MODEL = "LORA_MODEL"
LOSS_MAP = "LOSS_MAP"
NO_LORA = "[None]"
#: Algorithms ComfyUI offers are LoRA, LoHa, LoKr and OFT; Weft trains (and loads) LoRA only.
ALGORITHMS = ["LoRA"]
_DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def _lora_names() -> list[str]:
    """The LoRA files, for the ``existing_lora`` combo (none outside a running server)."""
    folders = getattr(getattr(current_context(), "services", None), "folders", None)
    return folders.list_models("loras") if folders is not None else []


def _int(default: int, minimum: int, maximum: int, tooltip: str) -> tuple:
    return ("INT", {"default": default, "min": minimum, "max": maximum, "tooltip": tooltip})


def _bool(default: bool, tooltip: str) -> tuple:
    return ("BOOLEAN", {"default": default, "tooltip": tooltip})


def _combo(options: list[str], default: str, tooltip: str) -> tuple:
    return (options, {"default": default, "tooltip": tooltip})


# -- what the trainer is given ------------------------------------------------------------------------

def _flat_latents(latents: list[dict]) -> torch.Tensor | list[torch.Tensor]:
    """One LATENT's samples as they are; several LATENTs as a list of single latents."""
    if len(latents) == 1:
        return latents[0]["samples"]
    return [item[None] for latent in latents for item in latent["samples"]]


def _flat_conditioning(positive: list[list]) -> list:
    """One CONDITIONING as it is; several as one list of their entries."""
    if len(positive) == 1:
        return list(positive[0])
    return [entry for cond in positive for entry in (cond if isinstance(cond, list) else [cond])]


def _training_groups(latents: list[dict], bucket_mode: bool) -> tuple[list[torch.Tensor], bool]:
    """``(groups, per_item)``: resolution buckets as they come, equal-sized latents as one batch,
    latents of different sizes one per group (each trained alone)."""
    if bucket_mode:
        return [latent["samples"] for latent in latents], False
    flat = _flat_latents(latents)
    if isinstance(flat, torch.Tensor):
        return [flat], False
    if len({tuple(item.shape) for item in flat}) == 1:
        return [torch.cat(flat)], False
    return flat, True


def _matched_conditioning(positive: list, count: int, bucket_mode: bool) -> list:
    if bucket_mode:
        return positive
    if len(positive) == 1 and count > 1:
        return positive * count
    if len(positive) != count:
        raise ValueError(f"Number of positive conditions ({len(positive)}) does not match number of images ({count}).")
    return positive


def _existing(existing_lora: str) -> tuple[dict, int]:
    if existing_lora == NO_LORA:
        return {}, 0
    path = services().folders.model_path("loras", existing_lora)
    return load_state_dict(path)[0], steps_in_file_name(existing_lora)


class TrainLoraNode:
    DESCRIPTION = ("Trains a LoRA on the model from latents and their positive conditioning; returns the "
                   "LoRA's weights, the loss of every step and the total step count.")
    CATEGORY = "model/training"
    FUNCTION = "train"
    INPUT_IS_LIST = True
    EXPERIMENTAL = True
    RETURN_TYPES = (LORA_MODEL, LOSS_MAP, "INT")
    RETURN_NAMES = ("lora", "loss_map", "steps")
    OUTPUT_TOOLTIPS = ("LoRA weights", "Loss history", "Total training steps")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The model to train the LoRA on."}),
            "latents": ("LATENT", {"tooltip": "The Latents to use for training, serve as dataset/input of the model."}),
            "positive": ("CONDITIONING", {"tooltip": "The positive conditioning to use for training."}),
            "batch_size": _int(1, 1, 10000, "The batch size to use for training."),
            "grad_accumulation_steps": _int(1, 1, 1024,
                                            "The number of gradient accumulation steps to use for training."),
            "steps": _int(16, 1, 100000, "The number of steps to train the LoRA for."),
            "learning_rate": ("FLOAT", {"default": 0.0005, "min": 0.0000001, "max": 1.0, "step": 0.0000001,
                                        "tooltip": "The learning rate to use for training."}),
            "rank": _int(8, 1, 128, "The rank of the LoRA layers."),
            "optimizer": _combo(list(OPTIMIZERS), "AdamW", "The optimizer to use for training."),
            "loss_function": _combo(list(LOSSES), "MSE", "The loss function to use for training."),
            "seed": _int(0, 0, 0xFFFFFFFFFFFFFFFF, "The seed to use for training (used in generator for LoRA "
                                                    "weight initialization and noise sampling)"),
            "training_dtype": _combo(["bf16", "fp32", "none"], "bf16",
                                     "The dtype to use for training. 'none' preserves the model's native "
                                     "compute dtype instead of overriding it."),
            "lora_dtype": _combo(["bf16", "fp32"], "bf16", "The dtype to use for lora."),
            "quantized_backward": _bool(False, "When using training_dtype 'none' and training on quantized model, "
                                               "doing backward with quantized matmul when enabled."),
            "algorithm": _combo(ALGORITHMS, ALGORITHMS[0], "The algorithm to use for training."),
            "gradient_checkpointing": _bool(True, "Use gradient checkpointing for training."),
            "checkpoint_depth": _int(1, 1, 5, "Depth level for gradient checkpointing."),
            "offloading": _bool(False, "Offload the Model to RAM. Requires Bypass Mode."),
            "existing_lora": _combo(_lora_names() + [NO_LORA], NO_LORA,
                                    "The existing LoRA to append to. Set to None for new LoRA."),
            "bucket_mode": _bool(False, "Enable resolution bucket mode. When enabled, expects pre-bucketed "
                                        "latents from ResolutionBucket node."),
            "bypass_mode": _bool(False, "Enable bypass mode for training. When enabled, adapters are applied via "
                                        "forward hooks instead of weight modification. Useful for quantized "
                                        "models where weights cannot be directly modified."),
        }}

    def train(self, model, latents, positive, batch_size, grad_accumulation_steps, steps, learning_rate, rank,
              optimizer, loss_function, seed, training_dtype, lora_dtype, quantized_backward, algorithm,
              gradient_checkpointing, checkpoint_depth, offloading, existing_lora, bucket_mode, bypass_mode):
        # Every input arrives as a list (INPUT_IS_LIST); the settings are their first items.
        # quantized_backward, offloading and bypass_mode change how ComfyUI attaches adapters to
        # quantized or offloaded weights; Weft trains on the whole UNet with the adapters as
        # parametrizations, which computes the same LoRA, so they are accepted and change nothing.
        model, bucket_mode = model[0], bucket_mode[0]
        if algorithm[0] not in ALGORITHMS:
            raise ValueError(f"algorithm {algorithm[0]!r} is not supported; Weft trains {ALGORITHMS}")
        groups, per_item = _training_groups(latents, bucket_mode)
        count = sum(group.shape[0] for group in groups)
        positive = _matched_conditioning(_flat_conditioning(positive), count, bucket_mode)
        existing_sd, existing_steps = _existing(existing_lora[0])
        build = model_conds_for_family(model.family, model.config.size_embed_dim)
        with services().engine.use_unet(model, latent_shape=groups[0].shape) as runnable:
            settings = LoraTraining(
                steps=steps[0], batch_size=batch_size[0], grad_accumulation_steps=grad_accumulation_steps[0],
                learning_rate=learning_rate[0], rank=rank[0], optimizer=optimizer[0],
                loss_function=loss_function[0], seed=seed[0],
                training_dtype=_DTYPES.get(training_dtype[0], runnable.dtype), lora_dtype=_DTYPES[lora_dtype[0]],
                gradient_checkpointing=gradient_checkpointing[0], checkpoint_depth=checkpoint_depth[0])
            latent_in = model.latent_format.process_in
            data = TrainingData(
                groups=[latent_in(group.float()) for group in groups],
                conds=unet_inputs_for(positive, build, CondContext(noise_shape=groups[0][:1].shape)),
                per_item=per_item, bucketed=bucket_mode)
            trained = train_lora(runnable.module, model_sampling_of(model), data, settings,
                                 existing=existing_adapters(runnable.module, existing_sd) if existing_sd else None,
                                 device=runnable.device, on_step=report_progress)
        return (trained.state_dict, {"loss": trained.losses}, steps[0] + existing_steps)


class LoraModelLoader:
    DESCRIPTION = "Load Trained LoRA weights from Train LoRA node."
    CATEGORY = "model/loaders"
    FUNCTION = "load_lora_model"
    EXPERIMENTAL = True
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The modified diffusion model.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The diffusion model the LoRA will be applied to."}),
            "lora": (LORA_MODEL, {"tooltip": "The LoRA model to apply to the diffusion model."}),
            "strength_model": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0,
                                         "tooltip": "How strongly to modify the diffusion model. This value can "
                                                    "be negative."}),
            "bypass": _bool(False, "When enabled, applies LoRA in bypass mode without modifying base model weights. "
                                   "Useful for training and when model weights are offloaded."),
        }}

    def load_lora_model(self, model, lora, strength_model, bypass=False):
        # Weft's patches are applied to the weights for a run and restored bit-exactly after it, so
        # bypass (ComfyUI's forward-hook form of the same sum) needs no second path.
        if strength_model == 0:
            return (model,)
        return (load_lora_for_models(model, None, lora, strength_model, 0)[0],)


def save_lora_file(lora_sd: dict, prefix: str, steps=None) -> str:
    """``<output>/<prefix>_<counter>_.safetensors`` (``<prefix>_<steps>_steps_<counter>_`` with a
    step count), numbered as ComfyUI numbers saved files; returns the path below output/."""
    target = resolve_save_target(services().folders.output, prefix)
    if steps is not None:
        name = f"{target.filename}_{steps}_steps"
        target = dataclasses.replace(target, filename=name, counter=next_counter(target.folder, name))
    data = safetensors.torch.save({key: value.contiguous() for key, value in lora_sd.items()})
    file_name, _ = write_numbered(target, target.counter, 0, "safetensors", data)
    return f"{target.subfolder}/{file_name}" if target.subfolder else file_name


class SaveLoRA:
    DESCRIPTION = "Saves LoRA weights from Train LoRA as a .safetensors file in the output directory."
    CATEGORY = "loaders"
    FUNCTION = "save"
    OUTPUT_NODE = True
    EXPERIMENTAL = True
    RETURN_TYPES = ()
    #: The newer ComfyUI schema leaves ``steps`` a plain optional INT; the older one forced a link.
    STEPS_OPTIONS: dict = {}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
                    "lora": (LORA_MODEL, {"tooltip": "The LoRA model to save. Do not use the model with LoRA layers."}),
                    "prefix": ("STRING", {"default": "loras/ComfyUI_trained_lora",
                                          "tooltip": "The prefix to use for the saved LoRA file."}),
                },
                "optional": {
                    "steps": ("INT", {**cls.STEPS_OPTIONS,
                                      "tooltip": "Optional: The number of steps to LoRA has been trained for, "
                                                 "used to name the saved file."}),
                }}

    def save(self, lora, prefix, steps=None):
        save_lora_file(lora, prefix, steps)
        return {}


class SaveLoRANode(SaveLoRA):
    """ComfyUI's earlier id of the same node (its ``steps`` could only be linked)."""

    STEPS_OPTIONS = {"forceInput": True}


class LossGraphNode:
    DESCRIPTION = "Plots the loss graph and saves it to the output directory."
    CATEGORY = "model/training"
    FUNCTION = "plot_loss"
    OUTPUT_NODE = True
    EXPERIMENTAL = True
    RETURN_TYPES = ()

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
                    "loss": (LOSS_MAP, {"tooltip": "Loss map from training node."}),
                    "filename_prefix": ("STRING", {"default": "loss_graph",
                                                   "tooltip": "Prefix for the saved loss graph image."}),
                },
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def plot_loss(self, loss, filename_prefix, prompt=None, extra_pnginfo=None):
        # As ComfyUI's current node: the graph is a preview (temp folder, random "ComfyUI_temp_"
        # prefix); filename_prefix stays in the schema for the workflows that set it.
        picture = np.asarray(draw_loss_graph(loss["loss"]), dtype=np.float32) / 255.0
        chunks = {} if services().options.disable_metadata else metadata_chunks(prompt, extra_pnginfo)
        suffix = "".join(secrets.choice(string.ascii_lowercase) for _ in range(5))
        images = save_png_batch(torch.from_numpy(picture)[None], "ComfyUI_temp_" + suffix, "temp", 1, chunks)
        return {"ui": {"images": images}}


NODE_CLASS_MAPPINGS = {
    "TrainLoraNode": TrainLoraNode,
    "LoraModelLoader": LoraModelLoader,
    "SaveLoRA": SaveLoRA,
    "SaveLoRANode": SaveLoRANode,
    "LossGraphNode": LossGraphNode,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "TrainLoraNode": "Train LoRA",
    "LoraModelLoader": "Load LoRA Model",
    "SaveLoRA": "Save LoRA Weights",
    "SaveLoRANode": "Save LoRA Weights",
    "LossGraphNode": "Plot Loss Graph",
}
