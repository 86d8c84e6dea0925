"""Non-finite numbers (NaN, ±Inf): caught where a result comes out, explained when caught.

A checkpoint with NaN or Inf weights, or a float16 overflow (SD2's and SDXL's VAEs, some UNets),
otherwise ends as an all-black image with no word of why. The checks are one
``isfinite().all()`` reduction of a tensor already computed: each sampling step's x0 and the
sampled latent (:mod:`ldm.sampling.sample`), each VAE pass (:mod:`ldm.vae`). Weights are only
scanned after a check has failed, to say which part is broken; nothing is scanned at load.

``python -m ldm.finite FILE…`` counts the non-finite values of weights files per model part.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import Tensor

#: The flags (server.py ``add_engine_arguments``) a message suggests.
UNET_PRECISION_HINT = "--bf16-unet, --fp32-unet or --force-fp32"
VAE_PRECISION_HINT = "--fp32-vae (or --cpu-vae)"
CHECK_FILE_HINT = "check the file with `python -m ldm.finite FILE`"


class NonFiniteError(ValueError):
    """A result holds NaN or Inf; the message says what produced it, the likely cause, what to try."""


def is_finite(tensor: Tensor) -> bool:
    """Every value finite (one reduction; on a GPU, one synchronisation)."""
    return bool(torch.isfinite(tensor).all())


@dataclass(frozen=True)
class NonFiniteCount:
    """Non-finite values found in a set of weights: ``values`` in ``tensors`` tensors, ``first`` named."""

    values: int
    tensors: int
    first: str

    def describe(self, owner: str) -> str:
        plural = "s" if self.tensors != 1 else ""
        return (f"{owner} hold {self.values} NaN/Inf value{'s' if self.values != 1 else ''} in "
                f"{self.tensors} tensor{plural} (first: {self.first})")


def count_non_finite(named_tensors: Iterable[tuple[str, Tensor]]) -> NonFiniteCount | None:
    """The non-finite values of floating-point tensors (fp8 widened to fp16 first); None if none."""
    values = tensors = 0
    first = ""
    for name, tensor in named_tensors:
        if not tensor.is_floating_point() or tensor.device.type == "meta":
            continue
        data = tensor.detach()
        if data.element_size() == 1:  # float8: isfinite is not implemented for every fp8 dtype
            data = data.to(torch.float16)
        bad = int((~torch.isfinite(data)).sum())
        if bad:
            values += bad
            tensors += 1
            first = first or name
    return NonFiniteCount(values, tensors, first) if values else None


def weights_report(owner: str, module: torch.nn.Module | None) -> str | None:
    """A sentence naming the non-finite weights of ``module``, or None when all are finite."""
    if not isinstance(module, torch.nn.Module):
        return None
    found = count_non_finite(module.state_dict(keep_vars=True).items())
    return found.describe(owner) if found is not None else None


def sampling_error(sampler: str, step: int | None, total: int, *, latent_in: Tensor | None = None,
                   conditioning: Iterable[tuple[str, Tensor]] = (),
                   diffusion_model: torch.nn.Module | None = None) -> NonFiniteError:
    """The error for a sampling run whose step ``step`` (0-based; None: the final latent) is not
    finite, with a post-mortem of its inputs and the UNet's weights (as patched for the run)."""
    if step is None:
        where = "in the sampled latent after the last step"
    elif step < total:
        where = f"at step {step + 1} of {total}"
    else:
        where = f"at step {step + 1}"  # dpm_adaptive chooses its own step count
    head = f"Sampling ({sampler}) produced NaN/Inf {where}"
    if latent_in is not None and not is_finite(latent_in):
        return NonFiniteError(f"{head}: the input latent already holds NaN/Inf (look at the node that made it).")
    for side, tensor in conditioning:
        if not is_finite(tensor):
            return NonFiniteError(
                f"{head}: the {side} conditioning already holds NaN/Inf, so the text encoder produced it; "
                f"its weights (the checkpoint's CLIP) are likely broken — {CHECK_FILE_HINT}.")
    broken = weights_report("the UNet's weights (with any LoRA or merge applied)", diffusion_model)
    if broken is not None:
        return NonFiniteError(f"{head}: {broken}. The checkpoint, or a LoRA or merge applied to it, is "
                              f"broken — {CHECK_FILE_HINT}.")
    checked = " and the UNet's weights" if isinstance(diffusion_model, torch.nn.Module) else ""
    return NonFiniteError(
        f"{head}. Its inputs{checked} are finite, so the "
        f"numbers overflowed: a float16 UNet overflows on some models and settings (high cfg, large "
        f"images) — try {UNET_PRECISION_HINT}. If that does not help, the checkpoint may hold "
        f"non-finite weights: {CHECK_FILE_HINT}.")


def vae_error(operation: str, module: torch.nn.Module, dtypes: Iterable[torch.dtype], device: torch.device,
              given: Tensor) -> NonFiniteError:
    """The error for a VAE ``operation`` ("decode" / "encode") whose result is not finite after
    running in ``dtypes`` (in order) on ``device``; ``given`` is its input."""
    ran = ", then ".join(str(dtype).removeprefix("torch.") for dtype in dtypes)
    head = f"VAE {operation} produced NaN/Inf (the VAE ran in {ran} on {device})"
    if not is_finite(given):
        what = "latent" if operation == "decode" else "image"
        return NonFiniteError(f"{head}: the {what} given to it already holds NaN/Inf "
                              f"(look at the node that made it).")
    broken = weights_report("the VAE's weights", module)
    if broken is not None:
        return NonFiniteError(f"{head}: {broken}. The VAE file, or the checkpoint it came from, is broken — "
                              f"{CHECK_FILE_HINT}, or load another VAE with VAELoader.")
    if all(dtype == torch.float32 for dtype in dtypes):
        return NonFiniteError(f"{head}. Its input and weights are finite; the values may be far outside "
                              f"this VAE's range (a latent of another model family?).")
    return NonFiniteError(f"{head}. Its input and weights are finite, so the VAE overflowed its "
                          f"precision — try {VAE_PRECISION_HINT}.")


# --- checking a file ------------------------------------------------------------------------------

def file_report(path: str) -> list[str]:
    """Lines counting the non-finite values of a weights file per model part (UNet, VAE, text)."""
    from ldm.loading.checkpoint import load_state_dict
    from ldm.loading.detect import TEXT_PREFIXES, UNET_PREFIX, VAE_PREFIX

    state_dict, _ = load_state_dict(path)
    parts: dict[str, list[tuple[str, Tensor]]] = {}
    for key, tensor in state_dict.items():
        part = ("UNet" if key.startswith(UNET_PREFIX) else "VAE" if key.startswith(VAE_PREFIX)
                else "text encoder" if key.startswith(TEXT_PREFIXES) else "other")
        parts.setdefault(part, []).append((key, tensor))
    lines = []
    for part, tensors in parts.items():
        found = count_non_finite(tensors)
        status = found.describe("its weights") if found else "all finite"
        lines.append(f"{path}: {part} ({len(tensors)} tensors): {status}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ldm.finite",
                                     description="Count NaN/Inf values in weights files, per model part.")
    parser.add_argument("files", nargs="+", help="checkpoint, UNet, VAE or LoRA files")
    args = parser.parse_args(argv)
    clean = True
    for path in args.files:
        for line in file_report(path):
            print(line)
            clean = clean and line.endswith("all finite")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
