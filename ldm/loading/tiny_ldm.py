"""Tiny random CompVis latent-diffusion checkpoints, written as PyTorch Lightning ``.ckpt`` files.

One file per layout of the paper's released models (Rombach et al. 2022), with what a real
``LatentDiffusion`` checkpoint holds at the top of its ``state_dict``: the UNet under
``model.diffusion_model.``, the first stage under ``first_stage_model.``, the conditioning stage
under ``cond_stage_model.`` and ``register_schedule``'s buffers (``betas``, ``alphas_cumprod``, …,
float32, from the layout's published ``linear_start`` / ``linear_end``); ``scale_factor`` only
where the real model has it as a buffer (``scale_by_std``: LSUN churches). The pickle wraps it the
way Lightning does, with a ``ModelCheckpoint`` callback keyed by its class, so loading goes through
the restricted reader (``torch.load(weights_only=True)`` refuses the file).

=============  ===================  =========  ========================================  ==============
layout         like                 1st stage  UNet                                      cond stage
=============  ===================  =========  ========================================  ==============
``uncond``     CelebA-HQ            VQ-f4      3 -> 3, ADM attention                      none
``churches``   LSUN churches        KL-f8      4 -> 4, ADM attention, ``scale_factor``    none
``cin``        cin256-v2            VQ-f4      3 -> 3, cross-attention on 512             class embedder, 1001 rows
``txt2img``    txt2img-f8-large     KL-f8      4 -> 4, SD1-shaped, context = BERT width   LDM BERT (tiny)
``sr``         bsr_sr               VQ-f4      6 -> 3                                     none (identity)
``inpaint``    inpainting_big       VQ-f4      7 -> 3                                     the first stage
``semantic``   semantic_synthesis   VQ-f4      6 -> 3                                     SpatialRescaler 182 -> 3
``layout``     layout2img-oi256     VQ-f4      3 -> 3, cross-attention on the encoder     layout BERT (tiny),
                                               width                                      8192 ids × 92
=============  ===================  =========  ========================================  ==============

``python -m ldm.loading.tiny_ldm OUT_DIR`` writes them into ``OUT_DIR/checkpoints``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ldm.loading.detect import CLASS_EMBEDDING_KEY, UNET_PREFIX, VAE_PREFIX
from ldm.loading.ldm_checkpoint import (CHANNEL_MAPPER_KEY, CLASS, INPAINT, LAYOUT, PUBLISHED_SCHEDULES,
                                        SEMANTIC, SUPER_RESOLUTION, TEXT, UNCONDITIONAL)
from ldm.loading.tiny_first_stage import tiny_first_stage_state_dict
from ldm.loading.weights import random_weights
from ldm.networks.unet import UNetConfig, UNetModel
from ldm.sampling.model_sampling import ScheduleConfig, make_betas
from ldm.text.layout_handle import TINY_LAYOUT_BERT, tiny_layout_bert_state_dict
from ldm.text.tiny_ldm_bert import TINY_LDM_BERT, tiny_ldm_bert_state_dict

#: The semantic-synthesis models one-hot encode COCO-Stuff's 182 classes.
SEMANTIC_CLASSES = 182
IMAGENET_CLASSES_WITH_UNCONDITIONAL = 1001
CLASS_WIDTH = 512
#: LSUN churches' ``scale_factor`` buffer is 1/std of its latents; any positive value exercises the path.
TINY_CHURCHES_SCALE_FACTOR = 0.2275
WEIGHT_DTYPE = torch.float16


def _ldm_unet(in_channels: int, out_channels: int) -> UNetConfig:
    """ADM attention at the inner level and the middle, 32 channels per head (the published default)."""
    return UNetConfig(in_channels=in_channels, out_channels=out_channels, model_channels=32, channel_mult=(1, 2),
                      num_res_blocks=(1, 1), transformer_depth=(0, 1), transformer_depth_middle=1,
                      transformer_depth_output=(0, 0, 1, 1), context_dim=None, use_linear_in_transformer=False,
                      num_head_channels=32, legacy_attention=True)


def _cross_attention_unet(channels: int, context_dim: int, num_heads: int = -1,
                          num_head_channels: int = -1) -> UNetConfig:
    """Spatial transformers at the inner level and the middle (kept off the outer level for size)."""
    return UNetConfig(in_channels=channels, out_channels=channels, model_channels=32, channel_mult=(1, 2),
                      num_res_blocks=(1, 1), transformer_depth=(0, 1), transformer_depth_middle=1,
                      transformer_depth_output=(0, 0, 1, 1), context_dim=context_dim,
                      use_linear_in_transformer=False, num_heads=num_heads, num_head_channels=num_head_channels)


@dataclass(frozen=True)
class TinyLDMLayout:
    conditioning: str
    first_stage: str  # a name of ldm.loading.tiny_first_stage.TINY_FIRST_STAGES
    unet: UNetConfig
    scale_factor_buffer: float | None = None

    @property
    def linear_range(self) -> tuple[float, float]:
        if self.conditioning == UNCONDITIONAL and self.first_stage.startswith("kl"):
            return PUBLISHED_SCHEDULES["unconditional_kl"]
        return PUBLISHED_SCHEDULES[self.conditioning]


TINY_LDM_LAYOUTS: dict[str, TinyLDMLayout] = {
    "uncond": TinyLDMLayout(UNCONDITIONAL, "vq-f4", _ldm_unet(3, 3)),
    "churches": TinyLDMLayout(UNCONDITIONAL, "kl-f8", _ldm_unet(4, 4), TINY_CHURCHES_SCALE_FACTOR),
    # detection reads 32 channels per head for an LDM cin UNet that is not cin256-v2's full size
    "cin": TinyLDMLayout(CLASS, "vq-f4", _cross_attention_unet(3, CLASS_WIDTH, num_head_channels=32)),
    # an SD1-shaped UNet: detected as sd1, whose convention is 8 heads
    "txt2img": TinyLDMLayout(TEXT, "kl-f8", _cross_attention_unet(4, TINY_LDM_BERT.width, num_heads=8)),
    "sr": TinyLDMLayout(SUPER_RESOLUTION, "vq-f4", _ldm_unet(6, 3)),
    "inpaint": TinyLDMLayout(INPAINT, "vq-f4", _ldm_unet(7, 3)),
    "semantic": TinyLDMLayout(SEMANTIC, "vq-f4", _ldm_unet(6, 3)),
    # the real one: 128 channels, 32 per head (its config's num_head_channels), context 512
    "layout": TinyLDMLayout(LAYOUT, "vq-f4", _cross_attention_unet(3, TINY_LAYOUT_BERT.width, num_head_channels=32)),
}


def schedule_buffers(linear_start: float, linear_end: float, timesteps: int = 1000) -> dict[str, torch.Tensor]:
    """``LatentDiffusion.register_schedule``'s persistent buffers (float64 maths, float32 storage;
    v_posterior = 0 as in every released config)."""
    betas = make_betas(ScheduleConfig("scaled_linear", linear_start, linear_end, timesteps))
    alphas = 1.0 - betas
    ab = torch.cumprod(alphas, dim=0)
    ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
    posterior_variance = betas * (1.0 - ab_prev) / (1.0 - ab)
    values = {
        "betas": betas, "alphas_cumprod": ab, "alphas_cumprod_prev": ab_prev,
        "sqrt_alphas_cumprod": ab.sqrt(), "sqrt_one_minus_alphas_cumprod": (1.0 - ab).sqrt(),
        "log_one_minus_alphas_cumprod": (1.0 - ab).log(), "sqrt_recip_alphas_cumprod": (1.0 / ab).sqrt(),
        "sqrt_recipm1_alphas_cumprod": (1.0 / ab - 1.0).sqrt(), "posterior_variance": posterior_variance,
        "posterior_log_variance_clipped": posterior_variance.clamp(min=1e-20).log(),
        "posterior_mean_coef1": betas * ab_prev.sqrt() / (1.0 - ab),
        "posterior_mean_coef2": (1.0 - ab_prev) * alphas.sqrt() / (1.0 - ab),
    }
    return {key: value.float() for key, value in values.items()}


def tiny_ldm_state_dict(layout: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """The whole ``state_dict`` of the tiny ``layout`` (see the module's table)."""
    if layout not in TINY_LDM_LAYOUTS:
        raise ValueError(f"unknown tiny LDM layout {layout!r}; choose from {sorted(TINY_LDM_LAYOUTS)}")
    spec = TINY_LDM_LAYOUTS[layout]
    generator = torch.Generator().manual_seed(seed)
    # Network weights in half precision to keep each file under 5 MB (the releases store float32).
    state = {UNET_PREFIX + k: v for k, v in random_weights(UNetModel(spec.unet), generator, WEIGHT_DTYPE).items()}
    state.update({VAE_PREFIX + k: v
                  for k, v in tiny_first_stage_state_dict(spec.first_stage, seed, WEIGHT_DTYPE).items()})
    if spec.conditioning == CLASS:
        state[CLASS_EMBEDDING_KEY] = torch.randn(IMAGENET_CLASSES_WITH_UNCONDITIONAL, CLASS_WIDTH,
                                                 generator=generator).to(WEIGHT_DTYPE)
    elif spec.conditioning == TEXT:
        # The unused vocabulary-sized output head (to_logits) that real files carry is left out
        # for size; the loader's skipping of it is tested with ldm.text.
        state.update({k: v.to(WEIGHT_DTYPE) for k, v in tiny_ldm_bert_state_dict(seed).items()
                      if not k.endswith(("to_logits.weight", "to_logits.bias"))})
    elif spec.conditioning == LAYOUT:
        # to_logits left out for size, as for txt2img (8192 x width: a tenth of the file)
        state.update({k: v.to(WEIGHT_DTYPE) for k, v in tiny_layout_bert_state_dict(seed).items()
                      if not k.endswith(("to_logits.weight", "to_logits.bias"))})
    elif spec.conditioning == SEMANTIC:
        state[CHANNEL_MAPPER_KEY] = (torch.randn(spec.unet.out_channels, SEMANTIC_CLASSES, 1, 1, generator=generator)
                                     / SEMANTIC_CLASSES ** 0.5).to(WEIGHT_DTYPE)
    state.update(schedule_buffers(*spec.linear_range))
    if spec.scale_factor_buffer is not None:
        state["scale_factor"] = torch.tensor(spec.scale_factor_buffer)
    # EMA bookkeeping that real checkpoints carry beside the weights (loaders ignore it)
    state["model_ema.decay"] = torch.tensor(0.9999)
    state["model_ema.num_updates"] = torch.tensor(0, dtype=torch.int32)
    return state


class _ModelCheckpointStandIn:
    """Pickled under Lightning's callback name, as real checkpoints key their callbacks."""

    def __init__(self, monitor: str):
        self.monitor = monitor
        self.best_model_path = ""


_LIGHTNING_CALLBACK = ("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")


@contextlib.contextmanager
def _lightning_callback_class() -> Iterator[type]:
    """A class that pickles as ``pytorch_lightning…ModelCheckpoint``: pickle checks that the name
    resolves, so the module path exists in ``sys.modules`` only while the file is written."""
    module_name, class_name = _LIGHTNING_CALLBACK
    cls = type(class_name, (_ModelCheckpointStandIn,), {"__module__": module_name, "__qualname__": class_name})
    parts = module_name.split(".")
    added = []
    try:
        for depth in range(1, len(parts) + 1):
            name = ".".join(parts[:depth])
            if name not in sys.modules:
                sys.modules[name] = types.ModuleType(name)
                added.append(name)
        setattr(sys.modules[module_name], class_name, cls)
        yield cls
    finally:
        for name in reversed(added):
            del sys.modules[name]


def write_tiny_ldm_checkpoint(path: str | os.PathLike, layout: str, seed: int = 0) -> Path:
    """Write the tiny ``layout`` as a Lightning-style ``.ckpt`` (torch zip pickle) and return its path."""
    state_dict = tiny_ldm_state_dict(layout, seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lightning_callback_class() as callback:
        torch.save({"epoch": 3, "global_step": 1000, "pytorch-lightning_version": "1.4.2",
                    "state_dict": state_dict,
                    "callbacks": {callback: {"best_model_score": None, "best_model_path": ""}}}, path)
    return path


def write_all(out_dir: str | os.PathLike, seed: int = 0) -> list[Path]:
    folder = Path(out_dir) / "checkpoints"
    return [write_tiny_ldm_checkpoint(folder / f"tiny-ldm-{layout}.ckpt", layout, seed) for layout in TINY_LDM_LAYOUTS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ldm.loading.tiny_ldm", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="folder to write checkpoints/ into")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in write_all(args.out_dir, args.seed):
        print(f"{path}  {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
