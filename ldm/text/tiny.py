"""Random tiny text encoders in the real checkpoint layouts, for tests and the tiny-checkpoint
generator: width 32, 2 layers, 2 heads, MLP 128, the real vocabulary (49408) and 77 positions,
so every id the tokenizer produces fits.
"""

from __future__ import annotations

import torch

from ldm.text.clip_model import ClipTextConfig, ClipTextModel
from ldm.text.families import text_family
from ldm.text.layouts import ACTIVATION_OF_KIND, hf_to_openclip

TINY_WIDTH = 32
TINY_LAYERS = 2
TINY_MLP = 128


def tiny_config(kind: str, projection: bool) -> ClipTextConfig:
    return ClipTextConfig(width=TINY_WIDTH, layers=TINY_LAYERS, heads=2, mlp_width=TINY_MLP,
                          activation=ACTIVATION_OF_KIND[kind],
                          projection_dim=TINY_WIDTH if projection else None)


def random_hf_weights(config: ClipTextConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random weights in our (HF) layout: N(0, 0.02) matrices, norms near 1, small biases."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in ClipTextModel(config).state_dict().items()}
    weights = {}
    for key, shape in sorted(shapes.items()):
        noise = torch.randn(shape, generator=generator)
        if "layer_norm" in key and key.endswith(".weight"):
            weights[key] = 1.0 + 0.1 * noise
        elif key.endswith(".bias"):
            weights[key] = 0.02 * noise
        elif "embedding" in key:
            weights[key] = 0.5 * noise
        else:
            weights[key] = 0.2 * noise
    return weights


def tiny_text_state_dict(family: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random text-encoder weights for ``family``, keys exactly as in its single-file checkpoint.

    SD1 (CLIP-L, HF layout under ``cond_stage_model.transformer.``), SD2 / x4 upscaler (OpenCLIP-H
    under ``cond_stage_model.model.``), SDXL (both towers under ``conditioner.embedders.0/1``),
    SDXL refiner (bigG under ``conditioner.embedders.0.model.``).
    """
    generator = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for slot in text_family(family).slots:
        openclip = slot.kind != "clip_l"
        weights = random_hf_weights(tiny_config(slot.kind, projection=openclip), generator)
        if openclip:
            for key, tensor in hf_to_openclip(weights).items():
                out[f"{slot.prefix}model.{key}"] = tensor
            out[f"{slot.prefix}model.logit_scale"] = torch.tensor(4.6052)
        else:
            for key, tensor in weights.items():
                out[f"{slot.prefix}transformer.{key}"] = tensor
            # Real SD1 / SDXL files carry this buffer; loaders must skip it.
            out[f"{slot.prefix}transformer.text_model.embeddings.position_ids"] = \
                torch.arange(77, dtype=torch.int64).unsqueeze(0)
    return out
