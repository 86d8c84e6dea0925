"""Latent operations: arithmetic, interpolation, concatenation and cuts, batches, and the
LATENT_OPERATION functions that edit a latent or patch CFG on a MODEL clone.

Names, inputs, outputs and categories are current ComfyUI's (``comfy_extras/nodes_latent.py``,
``nodes_post_processing.py``'s BatchLatentsNode, ``nodes_rebatch.py``, ``nodes_images.py``'s
GetLatentSize); the algorithms are in :mod:`ldm.latent_ops`. A LATENT_OPERATION is a function
``operation(latent=tensor) -> tensor``, ComfyUI's calling convention, so pack nodes can make or
apply them too. Every node returns a new latent dict and leaves the one it received alone.
"""

from __future__ import annotations

from ldm import latent_ops
from ldm.imaging.editing import MERGE_MODES
from nodes.utils import grown_inputs

MAX_RESOLUTION = 16384
ADVANCED = "model/latent/advanced"
OPERATIONS = "model/latent/advanced/operations"


def _with_samples(latent: dict, samples) -> dict:
    out = dict(latent)
    out["samples"] = samples
    return out


class _LatentNode:
    CATEGORY = ADVANCED
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "run"


class _TwoLatents(_LatentNode):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples1": ("LATENT",), "samples2": ("LATENT",)}}


class LatentAdd(_TwoLatents):
    """The sum of two latents (the second resized and repeated to the first's shape)."""

    def run(self, samples1, samples2):
        first = samples1["samples"]
        return (_with_samples(samples1, first + latent_ops.reshape_to(first.shape, samples2["samples"])),)


class LatentSubtract(_TwoLatents):
    """The first latent minus the second (resized and repeated to the first's shape)."""

    def run(self, samples1, samples2):
        first = samples1["samples"]
        return (_with_samples(samples1, first - latent_ops.reshape_to(first.shape, samples2["samples"])),)


class LatentMultiply(_LatentNode):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",),
                             "multiplier": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01})}}

    def run(self, samples, multiplier):
        return (_with_samples(samples, samples["samples"] * multiplier),)


class LatentInterpolate(_LatentNode):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples1": ("LATENT",), "samples2": ("LATENT",),
                             "ratio": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def run(self, samples1, samples2, ratio):
        return (_with_samples(samples1, latent_ops.interpolate(samples1["samples"], samples2["samples"], ratio)),)


class LatentConcat(_LatentNode):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples1": ("LATENT",), "samples2": ("LATENT",),
                             "dim": (["x", "-x", "y", "-y", "t", "-t"],)}}

    def run(self, samples1, samples2, dim):
        return (_with_samples(samples1, latent_ops.concat(samples1["samples"], samples2["samples"], dim)),)


class LatentCut(_LatentNode):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "dim": (["x", "y", "t"],),
                             "index": ("INT", {"default": 0, "min": -MAX_RESOLUTION, "max": MAX_RESOLUTION,
                                               "step": 1}),
                             "amount": ("INT", {"default": 1, "min": 1, "max": MAX_RESOLUTION, "step": 1})}}

    def run(self, samples, dim, index, amount):
        return (_with_samples(samples, latent_ops.cut(samples["samples"], dim, index, amount)),)


class LatentCutToBatch(_LatentNode):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "dim": (["t", "x", "y"],),
                             "slice_size": ("INT", {"default": 1, "min": 1, "max": MAX_RESOLUTION, "step": 1})}}

    def run(self, samples, dim, slice_size):
        return (_with_samples(samples, latent_ops.cut_to_batch(samples["samples"], dim, slice_size)),)


class LatentBatch(_TwoLatents):
    CATEGORY = "model/latent/batch"
    DEPRECATED = True

    def run(self, samples1, samples2):
        return (latent_ops.batch([samples1, samples2]),)


class LatentBatchSeedBehavior(_LatentNode):
    """With "fixed" every latent gets the first one's batch index (so all draw the same noise);
    with "random" the indices are dropped (each latent draws its own)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",),
                             "seed_behavior": (["random", "fixed"], {"default": "fixed"})}}

    def run(self, samples, seed_behavior):
        out = dict(samples)
        if seed_behavior == "random":
            out.pop("batch_index", None)
        elif seed_behavior == "fixed":
            out["batch_index"] = [out.get("batch_index", [0])[0]] * samples["samples"].shape[0]
        return (out,)


class LatentApplyOperation(_LatentNode):
    CATEGORY = OPERATIONS
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "operation": ("LATENT_OPERATION",)}}

    def run(self, samples, operation):
        return (_with_samples(samples, operation(latent=samples["samples"])),)


class LatentApplyOperationCFG:
    """Applies the operation to the guidance (cond - uncond) before CFG combines the two, for
    the sigmas between ``start_percent`` and ``end_percent`` of the schedule."""

    CATEGORY = OPERATIONS
    EXPERIMENTAL = True
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "operation": ("LATENT_OPERATION",)},
                "optional": {
                    "start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001,
                                                "tooltip": "Start applying the operation at this fraction of "
                                                           "the model's denoising schedule. 0 is the beginning."}),
                    "end_percent": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001,
                                              "tooltip": "Stop applying the operation at this fraction of the "
                                                         "model's denoising schedule. 1 is the end."})}}

    def patch(self, model, operation, start_percent=0.0, end_percent=1.0):
        patched = model.clone()
        sampling = patched.get_model_object("model_sampling")
        patched.set_model_sampler_pre_cfg_function(
            cfg_operation(operation, sampling.percent_to_sigma(start_percent), sampling.percent_to_sigma(end_percent)))
        return (patched,)


def cfg_operation(operation, sigma_start: float, sigma_end: float):
    """A pre-CFG hook (ComfyUI's ``args`` convention) applying ``operation`` to the guidance
    ``cond - uncond`` (or to the cond prediction alone when there is no uncond) while the step's
    sigma lies in ``[sigma_end, sigma_start]``."""
    def pre_cfg(args):
        conds_out = args["conds_out"]
        sigma = float(args["sigma"][0])
        if sigma > sigma_start or sigma < sigma_end:
            return conds_out
        if len(conds_out) == 2 and conds_out[1] is not None:
            conds_out[0] = operation(latent=conds_out[0] - conds_out[1]) + conds_out[1]
        else:
            conds_out[0] = operation(latent=conds_out[0])
        return conds_out
    return pre_cfg


class LatentOperationBlend:
    CATEGORY = OPERATIONS
    EXPERIMENTAL = True
    DESCRIPTION = ("Blend the entire latent toward the reference latent, resizing the reference with "
                   "nearest-neighbor interpolation when needed.")
    RETURN_TYPES = ("LATENT_OPERATION",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"reference": ("LATENT",),
                             "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.0001,
                                                    "tooltip": "0 leaves the latent unchanged; 1 matches the "
                                                               "resized reference latent."})}}

    def make(self, reference, strength):
        target = reference["samples"]

        def blend(latent, **kwargs):
            return latent_ops.blend_toward(latent, target, strength)
        return (blend,)


class LatentOperationTonemapReinhard:
    CATEGORY = OPERATIONS
    EXPERIMENTAL = True
    RETURN_TYPES = ("LATENT_OPERATION",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"multiplier": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0, "step": 0.01})}}

    def make(self, multiplier):
        def tonemap(latent, **kwargs):
            return latent_ops.tonemap_reinhard(latent, multiplier)
        return (tonemap,)


class LatentOperationSharpen:
    CATEGORY = OPERATIONS
    EXPERIMENTAL = True
    RETURN_TYPES = ("LATENT_OPERATION",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "sharpen_radius": ("INT", {"default": 9, "min": 1, "max": 31, "step": 1, "advanced": True}),
            "sigma": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.1, "advanced": True}),
            "alpha": ("FLOAT", {"default": 0.1, "min": 0.0, "max": 5.0, "step": 0.01, "advanced": True})}}

    def make(self, sharpen_radius, sigma, alpha):
        def sharpen(latent, **kwargs):
            return latent_ops.sharpen(latent, sharpen_radius, sigma, alpha)
        return (sharpen,)


def _first(value):
    """A widget value of an INPUT_IS_LIST node: its one item (a plain value passes)."""
    return value[0] if isinstance(value, list) else value


class RebatchLatents:
    CATEGORY = "model/latent/batch"
    INPUT_IS_LIST = True
    RETURN_TYPES = ("LATENT",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "rebatch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "latents": ("LATENT",),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096,
                                   "tooltip": "Output size along the selected dimension."}),
            "dimension": (list(latent_ops.REBATCH_DIMENSIONS), {
                "default": "b", "tooltip": "Rebatch batch items, video latent time, or audio latent time."}),
            "overlap": ("INT", {"default": 0, "min": 0, "max": 4096, "advanced": True, "tooltip":
                                "Samples duplicated between output splits and reconciled between input batches."}),
            "merge_overlap_mode": (list(MERGE_MODES), {
                "default": "truncate start", "advanced": True,
                "tooltip": "How overlapping samples from consecutive input batches are merged."}),
        }}

    def rebatch(self, latents, batch_size, dimension="b", overlap=0, merge_overlap_mode="truncate start"):
        return (latent_ops.rebatch(latents, _first(batch_size), _first(dimension), _first(overlap),
                                   _first(merge_overlap_mode)),)


BATCH_LATENT_NAMES = [f"latent{i}" for i in range(50)]  # ComfyUI's Autogrow prefix "latent", max 50


class BatchLatentsNode:
    """Joins the connected latents (``latents.latent0`` …) into one batch."""

    CATEGORY = "model/latent/batch"
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        keys = [f"latents.{name}" for name in BATCH_LATENT_NAMES]
        return {"required": {keys[0]: ("LATENT",)}, "optional": {key: ("LATENT",) for key in keys[1:]}}

    def run(self, **latents):
        return (latent_ops.batch(list(grown_inputs(latents, "latents", BATCH_LATENT_NAMES).values())),)


class GetLatentSize:
    CATEGORY = "latent"
    DESCRIPTION = "Returns the width, height, frame count, and batch size of an image or video latent."
    RETURN_TYPES = ("INT", "INT", "INT", "INT")
    RETURN_NAMES = ("width", "height", "frames", "batch_size")
    OUTPUT_TOOLTIPS = ("The latent width.", "The latent height.",
                       "The latent frame count. Image latents have one frame.", "The number of latents in the batch.")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"latent": ("LATENT", {"tooltip": "The image or video latent to inspect."})}}

    def run(self, latent):
        return latent_ops.latent_size(latent["samples"])


_NODES = (LatentAdd, LatentSubtract, LatentMultiply, LatentInterpolate, LatentConcat, LatentCut, LatentCutToBatch,
          LatentBatch, LatentBatchSeedBehavior, LatentApplyOperation, LatentApplyOperationCFG,
          LatentOperationBlend, LatentOperationTonemapReinhard, LatentOperationSharpen, RebatchLatents,
          BatchLatentsNode, GetLatentSize)
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {
    "LatentBatch": "Batch Latents (DEPRECATED)", "LatentOperationBlend": "Latent Operation Blend",
    "RebatchLatents": "Rebatch Latents", "BatchLatentsNode": "Batch Latents",
    "GetLatentSize": "Get Image/Video Latent Size",
}
