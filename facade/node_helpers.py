"""ComfyUI's ``node_helpers`` for node packs: small helpers over CONDITIONING, images and hashes."""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from PIL import ImageFile, UnidentifiedImageError

from ldm.text.conditioning import with_values

HASHERS = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: The sampler compares timestep ranges strictly; split ranges are this far apart.
RANGE_GAP = 1e-5


def conditioning_set_values(conditioning, values={}, append=False):  # noqa: B006 - ComfyUI's signature
    """Each ``[cond, extras]`` pair with ``values`` set in a copy of its extras; with ``append``,
    a value already there is extended (``old + new``) instead of replaced."""
    if not append:
        return with_values(conditioning, values)
    out = []
    for cond, extras in conditioning:
        merged = dict(extras)
        for key, value in values.items():
            merged[key] = value if merged.get(key) is None else merged[key] + value
        out.append([cond, merged])
    return out


def conditioning_set_values_with_timestep_range(conditioning, values={}, start_percent=0.0,  # noqa: B006
                                                end_percent=1.0):
    """``values`` set only while sampling is between ``start_percent`` and ``end_percent``: a pair
    overlapping that range is split into up to three pairs (before, inside with ``values``, after),
    each within the pair's own range. An empty range leaves the conditioning as it is."""
    if start_percent > end_percent:
        return conditioning
    out = []
    for pair in conditioning:
        own_start = pair[1].get("start_percent", 0.0)
        own_end = pair[1].get("end_percent", 1.0)
        start, end = max(start_percent, own_start), min(end_percent, own_end)
        if start >= end:
            out.append(pair)
            continue
        if start > own_start:
            out += with_values([pair], {"start_percent": own_start, "end_percent": start - RANGE_GAP})
        out += with_values([pair], {**values, "start_percent": start, "end_percent": end})
        if end < own_end:
            out += with_values([pair], {"start_percent": end + RANGE_GAP, "end_percent": own_end})
    return out


def pillow(fn, arg):
    """``fn(arg)``, retried once with PIL's truncated-image loading on when PIL refuses the file."""
    try:
        return fn(arg)
    except (OSError, UnidentifiedImageError, ValueError):
        before = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            return fn(arg)
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = before


def hasher():
    """The hash constructor ``--default-hashing-function`` names (sha256 unless set)."""
    from comfy.cli_args import args

    return HASHERS.get(args.default_hashing_function, hashlib.sha256)


def string_to_torch_dtype(string):
    """``"fp32"`` / ``"fp16"`` / ``"bf16"`` as a torch dtype; None for anything else."""
    return TORCH_DTYPES.get(string)


def image_alpha_fix(destination, source):
    """``(destination, source)`` images ``[..., C]`` with the source's channels fitted to the
    destination's: an alpha channel the destination lacks is dropped from the source, and a source
    without one gets an opaque one. (ComfyUI pads the destination in the second case, which leaves
    the channel counts different; the evident meaning is taken here.)"""
    have, want = source.shape[-1], destination.shape[-1]
    if have > want:
        source = source[..., :want]
    elif have < want:
        source = F.pad(source, (0, want - have), value=1.0)
    return destination, source
