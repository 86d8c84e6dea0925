"""Device placement nodes: ComfyUI's SelectModelDevice, SelectCLIPDevice, SelectVAEDevice and
MultiGPU_WorkUnits (``comfy_extras/nodes_multigpu.py``).

Choices are ComfyUI's: ``"default"`` (the loader's device), ``"cpu"`` (not for the VAE) and
``"gpu:N"`` for each GPU when the machine has several; a choice this machine lacks (a workflow
made on a bigger one) passes the input through with a log line, as in ComfyUI. The choice rides
on a clone — the MODEL's hooks, the CLIP handle's ``compute_device``, the VAE handle's device —
and the engine places the weights there when they are used.
"""

from __future__ import annotations

import copy
import logging

import torch

from ldm.devices import compute_devices, device_options, resolve_device_option, supported_compute_dtype
from nodes.services import running_services, services

log = logging.getLogger(__name__)

CATEGORY = "advanced/multigpu"


def _devices() -> list:
    """The machine's devices as the engine sees them (its compute device's kind)."""
    found = running_services()
    if found is not None:
        return compute_devices(found.engine.compute.device)
    return compute_devices(torch.device("cuda" if torch.cuda.is_available() else "cpu"))


def _resolve(node: str, device: str):
    """``(found, target)``: ``found`` False when the choice names a device this machine lacks."""
    target = resolve_device_option(device, _devices())
    if target is None and device not in (None, "default"):
        log.info("%s: requested device '%s' not available, passing through unchanged.", node, device)
        return False, None
    return True, target


class _SelectDevice:
    """A Select*Device node: its one input (named after its type, lower-cased) and the device
    choice; ``WITH_CPU`` False leaves "cpu" out of the choices."""

    CATEGORY = CATEGORY
    FUNCTION = "execute"
    RETURN_TYPES: tuple[str]
    WITH_CPU = True

    @classmethod
    def INPUT_TYPES(cls):
        kind = cls.RETURN_TYPES[0]
        return {"required": {kind.lower(): (kind,), "device": (device_options(_devices(), with_cpu=cls.WITH_CPU),)}}

    @classmethod
    def VALIDATE_INPUTS(cls, device="default"):
        return True  # gpu:N of another machine is resolved (or passed over) at run time


class SelectModelDevice(_SelectDevice):
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = ("Place the diffusion model on a specific device (default / cpu / gpu:N). \"default\" restores "
                   "the device assigned by the loader; a device this machine lacks passes the model through.")

    def execute(self, model, device="default"):
        patched = model.clone()
        found, target = _resolve("Select Model Device", device)
        if not found:
            return (patched,)
        compute = services().engine.compute
        patched.hooks.compute_device = target
        patched.device = target if target is not None else compute.device
        if target is not None:
            dtype = supported_compute_dtype(patched.hooks.compute_dtype or compute.dtype, target)
            if dtype is not None:
                log.info("Select Model Device: using %s compute dtype on %s.", dtype, target)
                patched.hooks.compute_dtype = patched.dtype = dtype
        return (patched,)


class SelectCLIPDevice(_SelectDevice):
    RETURN_TYPES = ("CLIP",)
    DESCRIPTION = ("Place the CLIP text encoder on a specific device (default / cpu / gpu:N); a device this "
                   "machine lacks passes the CLIP through.")

    def execute(self, clip, device="default"):
        patched = clip.clone()
        found, target = _resolve("Select CLIP Device", device)
        if found:
            patched.compute_device = target
        return (patched,)


class SelectVAEDevice(_SelectDevice):
    RETURN_TYPES = ("VAE",)
    WITH_CPU = False
    DESCRIPTION = ("Place the VAE on a specific device (default / gpu:N); CPU is not a choice. A device this "
                   "machine lacks passes the VAE through.")

    def execute(self, vae, device="default"):
        placed = copy.copy(vae)  # the handle, sharing the autoencoder
        found, target = _resolve("Select VAE Device", device)
        if not found:
            return (placed,)
        if target is not None and target.type == "cpu":
            log.info("Select VAE Device: CPU is not a supported choice, passing through unchanged.")
            return (placed,)
        placed.device = target if target is not None else services().engine.compute.vae_device
        return (placed,)


class MultiGPU_WorkUnits:
    CATEGORY = CATEGORY
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = ("Prepares model to have sampling accelerated via splitting work units. Weft runs every work "
                   "unit on the model's device: on a machine with one device this changes nothing.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "max_gpus": ("INT", {"default": 2, "min": 1, "step": 1})}}

    def execute(self, model, max_gpus):
        patched = model.clone()
        primary = services().engine.compute.device
        extra = [d for d in _devices() if (d.type, d.index or 0) != (primary.type, primary.index or 0)]
        extra = extra[:max_gpus - 1]
        if extra:
            log.warning("MultiGPU CFG Split: Weft does not split work across devices yet; %d more device(s) "
                        "left idle, sampling runs on one.", len(extra))
        return (patched,)


NODE_CLASS_MAPPINGS = {
    "SelectModelDevice": SelectModelDevice,
    "SelectCLIPDevice": SelectCLIPDevice,
    "SelectVAEDevice": SelectVAEDevice,
    "MultiGPU_WorkUnits": MultiGPU_WorkUnits,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "SelectModelDevice": "Select Model Device",
    "SelectCLIPDevice": "Select CLIP Device",
    "SelectVAEDevice": "Select VAE Device",
    "MultiGPU_WorkUnits": "MultiGPU CFG Split",
}
