"""Model inputs from conditioning: what each family's network takes besides x and t.

A conditioning entry (one ``[cond, extras]`` pair of a CONDITIONING list, flattened to a dict
with ``cross_attn`` = cond) becomes named model inputs, each wrapped so the guidance layer can
crop it to an area, repeat it to a batch and concatenate entries into one call (ComfyUI's
``extra_conds`` and ``comfy.conds``):

- ``c_crossattn`` (:class:`CrossAttnInput`): text embeddings ``[1, tokens, dim]``; entries of
  different token counts batch together by repeating each to the least common multiple of the
  counts (attention over a repeated sequence is unchanged), at most 4× the shorter;
- ``y`` (:class:`RegularInput`): SDXL's pooled text embedding + size embeddings, the x4
  upscaler's noise level, unCLIP's noise-augmented image embedding;
- ``c_concat`` (:class:`NoiseShapedInput`): extra input channels (inpainting mask and masked
  latent, the x4 upscaler's low-res image), cropped with the area like x itself.

:data:`MODEL_CONDS_BY_FAMILY` maps ``ModelHandle.family`` to the builder.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ldm.networks import adm
from ldm.sampling.model_sampling import ScheduleConfig, alphas_cumprod
from ldm.sampling.noise import cpu_generator
from ldm.vision.unclip import DEFAULT_MERGE_AUGMENTATION, UNCLIP_EMBED_WIDTHS, unclip_label


def repeat_to_batch_size(tensor: Tensor, batch_size: int) -> Tensor:
    """Tile (or cut) the batch axis to ``batch_size``."""
    if tensor.shape[0] > batch_size:
        return tensor[:batch_size]
    if tensor.shape[0] < batch_size:
        reps = math.ceil(batch_size / tensor.shape[0])
        return tensor.repeat([reps] + [1] * (tensor.ndim - 1))[:batch_size]
    return tensor


def resize_to_batch_size(tensor: Tensor, batch_size: int) -> Tensor:
    """Pick batch items evenly to reach ``batch_size`` (ComfyUI's ``resize_to_batch_size``)."""
    n = tensor.shape[0]
    if n == batch_size:
        return tensor
    if batch_size <= 1:
        return tensor[:batch_size]
    if batch_size < n:
        scale = (n - 1) / (batch_size - 1)
        picks = [min(round(i * scale), n - 1) for i in range(batch_size)]
    else:
        scale = n / batch_size
        picks = [min(math.floor((i + 0.5) * scale), n - 1) for i in range(batch_size)]
    return tensor[picks]


def resize_center(image: Tensor, height: int, width: int) -> Tensor:
    """Bilinear resize of ``[B, C, h, w]`` after a centred crop to the target aspect ratio."""
    h, w = image.shape[-2:]
    if (h, w) == (height, width):
        return image
    old_aspect, new_aspect = w / h, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((w - w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((h - h * (old_aspect / new_aspect)) / 2)
    cropped = image[..., y:h - y, x:w - x]
    return F.interpolate(cropped, size=(height, width), mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class RegularInput:
    """A per-batch-item tensor; entries batch together only with equal shapes."""

    value: Tensor

    def process(self, batch_size: int, area: list[int] | None) -> "RegularInput":
        return type(self)(repeat_to_batch_size(self.value, batch_size))

    def can_concat(self, other: "RegularInput") -> bool:
        return self.value.shape == other.value.shape

    @staticmethod
    def concat(items: list["RegularInput"]) -> Tensor:
        return torch.cat([item.value for item in items])


@dataclass(frozen=True)
class NoiseShapedInput(RegularInput):
    """Shaped like the latent: cropped to the entry's area as x is."""

    def process(self, batch_size: int, area: list[int] | None) -> "NoiseShapedInput":
        data = self.value
        if area is not None:
            dims = len(area) // 2
            for i in range(dims):
                data = data.narrow(i + 2, area[i + dims], area[i])
        return type(self)(repeat_to_batch_size(data, batch_size))


#: Longest repetition factor allowed when batching text embeddings of different lengths.
MAX_CROSSATTN_REPEAT = 4


@dataclass(frozen=True)
class CrossAttnInput(RegularInput):
    """Text embeddings ``[B, tokens, dim]``; different token counts batch by repetition."""

    def can_concat(self, other: "RegularInput") -> bool:
        s1, s2 = self.value.shape, other.value.shape
        if s1 == s2:
            return True
        if s1[0] != s2[0] or s1[2] != s2[2]:
            return False
        return math.lcm(s1[1], s2[1]) // min(s1[1], s2[1]) <= MAX_CROSSATTN_REPEAT

    @staticmethod
    def concat(items: list["RegularInput"]) -> Tensor:
        length = 1
        for item in items:
            length = math.lcm(length, item.value.shape[1])
        return torch.cat([item.value.repeat(1, length // item.value.shape[1], 1) for item in items])


@dataclass(frozen=True)
class CondContext:
    """What a builder may read besides the entry: the sampling job's latent facts."""

    noise_shape: torch.Size
    latent_image: Tensor | None = None   # already through the latent format's process_in
    denoise_mask: Tensor | None = None   # [B, C, h, w], 1 = regenerate
    prompt_type: str = "positive"        # "positive" | "negative"
    seed: int = 0
    process_latent_in: Callable[[Tensor], Tensor] = lambda latent: latent


ModelInputs = dict[str, RegularInput]
ModelCondsBuilder = Callable[[dict[str, Any], CondContext], ModelInputs]


def text_conds(entry: dict[str, Any], ctx: CondContext) -> ModelInputs:
    """SD1 / SD2: cross-attention on the text embedding only (plus, when CLIPTextEncodeControlnet
    gave one, the text ControlNets attend to instead: ``crossattn_controlnet``)."""
    out: ModelInputs = {}
    if entry.get("cross_attn") is not None:
        out["c_crossattn"] = CrossAttnInput(entry["cross_attn"])
    if entry.get("cross_attn_controlnet") is not None:
        out["crossattn_controlnet"] = CrossAttnInput(entry["cross_attn_controlnet"])
    return out


# SD1 VAE latent of pixel value 0 (mid-grey in -1…1 space), per channel: what the 9-channel
# inpainting models see as "masked image" when sampling without a mask.
_BLANK_INPAINT_LATENT = (0.8223, -0.6876, 0.6364, 0.1380)


def inpaint_conds(entry: dict[str, Any], ctx: CondContext) -> ModelInputs:
    """9-channel inpainting models: ``c_concat = [mask (1 ch), masked-image latent (4 ch)]``."""
    out = text_conds(entry, ctx)
    h, w = ctx.noise_shape[-2:]
    batch = ctx.noise_shape[0]
    mask = entry.get("concat_mask", ctx.denoise_mask)
    image = entry.get("concat_latent_image")
    image = ctx.latent_image if image is None else ctx.process_latent_in(image)
    if mask is None:
        mask = torch.ones((1, 1, h, w))
        image = torch.tensor(_BLANK_INPAINT_LATENT).reshape(1, 4, 1, 1).expand(1, 4, h, w)
    else:
        if mask.ndim == len(ctx.noise_shape):
            mask = mask[:, :1]
        mask = mask.reshape((-1, 1) + tuple(mask.shape[-2:]))
        mask = resize_to_batch_size(resize_center(mask.float(), h, w).round(), batch)
    if image is None:
        image = torch.zeros((1,) + tuple(ctx.noise_shape[1:]))
    image = resize_to_batch_size(resize_center(image, h, w), batch)
    mask = resize_to_batch_size(mask, batch)
    out["c_concat"] = NoiseShapedInput(torch.cat([mask.to(image), image], dim=1))
    return out


def _pooled(entry: dict[str, Any]) -> Tensor:
    pooled = entry.get("pooled_output")
    if pooled is None:
        raise ValueError("SDXL conditioning needs a pooled_output (encode with return_pooled)")
    return pooled


def _size_defaults(entry: dict[str, Any], ctx: CondContext) -> tuple[int, int]:
    # Defaults are the image size the latent decodes to (×8), as ComfyUI fills them in.
    return entry.get("width", ctx.noise_shape[-1] * 8), entry.get("height", ctx.noise_shape[-2] * 8)


def sdxl_conds(entry: dict[str, Any], ctx: CondContext, size_embed_dim: int = adm.SIZE_EMBED_DIM) -> ModelInputs:
    """SDXL base: ``y`` = pooled text embedding ++ embeddings of (h, w, crop_h, crop_w, target h, w)."""
    out = text_conds(entry, ctx)
    width, height = _size_defaults(entry, ctx)
    out["y"] = RegularInput(adm.sdxl_label(
        _pooled(entry), width=width, height=height, crop_w=entry.get("crop_w", 0), crop_h=entry.get("crop_h", 0),
        target_width=entry.get("target_width", width), target_height=entry.get("target_height", height),
        size_embed_dim=size_embed_dim))
    return out


def sdxl_refiner_conds(entry: dict[str, Any], ctx: CondContext,
                       size_embed_dim: int = adm.SIZE_EMBED_DIM) -> ModelInputs:
    """SDXL refiner: ``y`` = pooled ++ embeddings of (h, w, crop_h, crop_w, aesthetic score)."""
    out = text_conds(entry, ctx)
    width, height = _size_defaults(entry, ctx)
    default_score = 2.5 if ctx.prompt_type == "negative" else 6.0
    out["y"] = RegularInput(adm.sdxl_refiner_label(
        _pooled(entry), width=width, height=height, crop_w=entry.get("crop_w", 0), crop_h=entry.get("crop_h", 0),
        aesthetic_score=entry.get("aesthetic_score", default_score), size_embed_dim=size_embed_dim))
    return out


#: The x4 upscaler noises its low-res input with a DDPM schedule of betas 1e-4 … 0.02 (scaled
#: linear, 1000 steps) up to level 350 and tells the UNet the level through its class
#: embedding (``y``, num_classes = 1000): ``noise_augmentation`` ∈ [0, 1] picks the level.
X4_NOISE_AUGMENTATION_SCHEDULE = ScheduleConfig(linear_start=0.0001, linear_end=0.02)
X4_MAX_NOISE_LEVEL = 350


def x4_noise_augment(image: Tensor, noise_level: int, seed: int) -> Tensor:
    """q(x_t | x_0) at ``noise_level`` with noise from a CPU generator seeded ``seed``."""
    ab = alphas_cumprod(X4_NOISE_AUGMENTATION_SCHEDULE)[noise_level].float()
    noise = torch.randn(image.shape, dtype=torch.float32, generator=cpu_generator(seed)).to(image)
    return ab.sqrt() * image + (1 - ab).sqrt() * noise


def x4_upscaler_conds(entry: dict[str, Any], ctx: CondContext) -> ModelInputs:
    """SD x4 upscaler: ``c_concat`` = low-res image (3 ch, -1…1, noised), ``y`` = noise level."""
    out = text_conds(entry, ctx)
    h, w = ctx.noise_shape[-2:]
    augmentation = float(entry.get("noise_augmentation", 0.0))
    level = round(X4_MAX_NOISE_LEVEL * augmentation)
    image = entry.get("concat_image")
    image = torch.zeros((1, 3, h, w)) if image is None else resize_center(image.float(), h, w)
    if augmentation > 0:
        # ComfyUI seeds this draw with the job's seed - 10.
        image = x4_noise_augment(image, level, ctx.seed - 10)
    out["c_concat"] = NoiseShapedInput(resize_to_batch_size(image, ctx.noise_shape[0]))
    out["y"] = RegularInput(torch.tensor([level], dtype=torch.long))
    return out


def unclip_conds(embed_width: int) -> ModelCondsBuilder:
    """SD 2.1 unCLIP: ``y`` = noise-augmented image embedding ++ its level's embedding, from the
    entry's ``unclip_conditioning`` (all zeros without one; see :mod:`ldm.vision.unclip`)."""
    def build(entry: dict[str, Any], ctx: CondContext) -> ModelInputs:
        out = text_conds(entry, ctx)
        # ComfyUI seeds this draw with the job's seed - 10, as for the x4 upscaler.
        out["y"] = RegularInput(unclip_label(
            entry.get("unclip_conditioning"), embed_width, ctx.seed - 10,
            entry.get("unclip_noise_augment_merge", DEFAULT_MERGE_AUGMENTATION)))
        return out
    return build


def unconditional_conds(entry: dict[str, Any], ctx: CondContext) -> ModelInputs:
    """The paper's unconditional LDMs: no input besides x and t (the entry's tensor is the empty
    placeholder their CLIP socket encodes every text to, :mod:`ldm.cond_stage.stages`)."""
    return {}


#: Key of a CONDITIONING entry's concat input for the CompVis concat LDMs: the conditioning the
#: UNet sees after the latent on channels, already at latent resolution (LDM*Conditioning nodes).
LDM_CONCAT_KEY = "ldm_concat"


def ldm_concat_conds(entry: dict[str, Any], ctx: CondContext) -> ModelInputs:
    """CompVis concat LDMs (super-resolution, inpainting, semantic synthesis): ``c_concat`` = the
    entry's ``ldm_concat`` [B, C', h, w], resized to the latent and repeated to its batch; the
    network then sees ``torch.cat([x, c_concat], 1)`` as CompVis' ``DiffusionWrapper`` builds it."""
    concat = entry.get(LDM_CONCAT_KEY)
    if concat is None:
        raise ValueError("this CompVis LDM is conditioned on an image concatenated to the latent: feed KSampler "
                         "the conditioning of LDMSuperResolutionConditioning, LDMInpaintConditioning or "
                         "SemanticMapConditioning (positive and negative)")
    h, w = ctx.noise_shape[-2:]
    concat = resize_to_batch_size(resize_center(concat.float(), h, w), ctx.noise_shape[0])
    return {"c_concat": NoiseShapedInput(concat)}


MODEL_CONDS_BY_FAMILY: dict[str, ModelCondsBuilder] = {
    "sd1": text_conds,
    "sd2": text_conds,
    "sd2_v": text_conds,
    "sd1_inpaint": inpaint_conds,
    "sd2_inpaint": inpaint_conds,
    "sdxl": sdxl_conds,
    "sdxl_refiner": sdxl_refiner_conds,
    "sd_x4": x4_upscaler_conds,
    **{family: unclip_conds(width) for family, width in UNCLIP_EMBED_WIDTHS.items()},
    "ldm_uncond": unconditional_conds,
    "ldm_cin": text_conds,  # the class vector is a one-token cross-attention context
    "ldm_concat": ldm_concat_conds,
    "ldm_layout": text_conds,  # the layout encoder's [B, 92, 512] output is the context
}


#: Builders whose label embeds sizes: they take the model's size-embedding width.
_SIZE_EMBEDDING_BUILDERS = (sdxl_conds, sdxl_refiner_conds)


def model_conds_for_family(family: str, size_embed_dim: int = adm.SIZE_EMBED_DIM) -> ModelCondsBuilder:
    """The family's builder; ``size_embed_dim`` is the UNet's ``config.size_embed_dim`` (SDXL
    layouts trained with other than the published 256-wide size embeddings)."""
    try:
        builder = MODEL_CONDS_BY_FAMILY[family]
    except KeyError:
        raise ValueError(f"no conditioning builder for model family {family!r}")
    if size_embed_dim != adm.SIZE_EMBED_DIM and builder in _SIZE_EMBEDDING_BUILDERS:
        return functools.partial(builder, size_embed_dim=size_embed_dim)
    return builder
