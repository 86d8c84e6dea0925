"""The conditioning images of the paper's concat LDMs, as CompVis computes them; the UNet then sees
``torch.cat([x, c], 1)`` (``DiffusionWrapper``), ``c`` at latent resolution:

- super-resolution (``bsr_sr``, ``cond_stage_key: LR_image``, identity cond stage): the low-res
  image itself in [-1, 1], so it must already be at the latent's size (f4: a quarter of the output);
- inpainting (``inpainting_big``, ``scripts/inpaint.py``): the mask binarised at 0.5, the masked
  image ``(1 - mask)·image``; both mapped to [-1, 1]; ``c = [first_stage.encode(masked) (3),
  mask resized (nearest) to the latent (1)]`` — the encoder's raw output, not scaled;
- semantic synthesis: a label map one-hot over the model's classes, through its
  ``SpatialRescaler`` (:class:`ldm.cond_stage.stages.SemanticStage`); the map from label values,
  from palette colours (:mod:`ldm.cond_stage.palette`) or painted from a mask set.

Images are ComfyUI's ``IMAGE`` [B, H, W, C] in 0..1 and ``MASK`` [B, H, W] (1 = repaint).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ldm.cond_stage.stages import SemanticStage
from ldm.vae import crop_to_multiple


def super_resolution_concat(low_res: torch.Tensor) -> torch.Tensor:
    """[B, 3, h, w] in [-1, 1] from a low-res IMAGE [B, h, w, C]."""
    return low_res[..., :3].movedim(-1, 1).float() * 2.0 - 1.0


def binarised_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[B, 1, H, W] of 0 / 1 at the image's size (the script's threshold 0.5)."""
    mask = mask.reshape((-1, 1) + tuple(mask.shape[-2:])).float()
    if tuple(mask.shape[-2:]) != (height, width):
        mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False)
    return (mask >= 0.5).float()


def inpaint_concat(vae, pixels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, C + 1, h, w]: the masked image's first-stage latent, then the mask in [-1, 1] at the
    latent's size. ``vae`` is the model's own first stage (a :class:`~ldm.vae.VaeHandle`)."""
    pixels = crop_to_multiple(pixels[..., :3].float(), vae.downscale_ratio)
    height, width = pixels.shape[1:3]
    binary = binarised_mask(mask, height, width)
    if binary.shape[0] != pixels.shape[0]:
        binary = binary.expand(pixels.shape[0], -1, -1, -1)
    # (1 - m)·image in 0..1; the handle maps pixels to [-1, 1], as the script's ·2 - 1 does.
    masked = pixels * (1.0 - binary.movedim(1, -1))
    latent = vae.encode(masked).float()
    small = F.interpolate(binary * 2.0 - 1.0, size=tuple(latent.shape[-2:]), mode="nearest")
    return torch.cat([latent, small.to(latent)], dim=1)


def label_map(segmentation: torch.Tensor) -> torch.Tensor:
    """Class labels [B, H, W] (long) of a label IMAGE (first channel, value = label / 255, as the
    8-bit grayscale label PNGs of COCO-Stuff and similar store them) or a MASK [B, H, W]."""
    values = segmentation[..., 0] if segmentation.ndim == 4 else segmentation
    return (values.float() * 255.0).round().long()


def label_map_from_masks(masks: torch.Tensor, classes: list[int], background: int) -> torch.Tensor:
    """Labels [1, H, W] (long) painted from a mask set: ``background`` everywhere, then each mask
    [N, H, W] where it is > 0.5 with its class, later masks over earlier ones."""
    masks = masks.reshape((-1,) + tuple(masks.shape[-2:]))
    if masks.shape[0] != len(classes):
        raise ValueError(f"{masks.shape[0]} mask(s) but {len(classes)} class(es) in mask_classes: give one class "
                         "per mask, in the masks' order")
    labels = torch.full((1,) + tuple(masks.shape[-2:]), background, dtype=torch.long)
    for mask, label in zip(masks, classes, strict=True):
        labels[0][mask > 0.5] = label
    return labels


def semantic_concat(stage: SemanticStage, labels: torch.Tensor) -> torch.Tensor:
    """The SpatialRescaler output for class ``labels`` [B, H, W]: one-hot [B, classes, H, W] first."""
    if int(labels.min()) < 0 or int(labels.max()) >= stage.n_classes:
        raise ValueError(f"labels must lie in 0..{stage.n_classes - 1} for this model; got "
                         f"{int(labels.min())}..{int(labels.max())}")
    one_hot = F.one_hot(labels, stage.n_classes).movedim(-1, 1).float()
    return stage.rescale(one_hot)
