"""What a checkpoint holds and which model family it is, from its keys and tensor shapes only.

File names are never consulted. The rules (documented in docs/models.md):

* UNet in CompVis layout under ``model.diffusion_model.`` (or unprefixed in a UNet-only file),
  KL VAE under ``first_stage_model.`` (or unprefixed), text encoders under
  ``cond_stage_model.`` / ``conditioner.embedders.``.
* Family from the UNet's shapes: an ``Embedding`` label (noise levels) and 7 input channels is the
  x4 upscaler; an ADM label MLP is SDXL (refiner when ``adm_in_channels == context_dim + 5*256``,
  i.e. pooled width equal to the context width and five size embeddings), unless the label is
  1536 or 2048 wide on an SD 2.x layout (attention at full resolution): SD 2.1 unCLIP-L / -H;
  otherwise linear
  transformer projections mean SD 2.x and 1x1-conv projections SD 1.x, with 9 input channels for
  the inpainting variants.
* Prediction: explicit markers win (a ``v_pred`` key, safetensors metadata
  ``modelspec.prediction_type``); otherwise SD 2.x is v-prediction when the first transformer
  block of the last output block has ``norm1.bias`` with population std > 0.09 (the statistic
  ComfyUI uses on ``output_blocks.11.1.transformer_blocks.0.norm1.bias``); inpainting is eps.
* Head split (not visible in shapes): metadata ``weft.num_heads`` / ``weft.num_head_channels``
  when present, else the family convention: SD 1.x and the x4 upscaler 8 heads, SD 2.x and SDXL
  64 channels per head.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ldm.networks.unet import UNetConfig, UNetConfigError, unet_config_from_state_dict

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIXES = ("cond_stage_model.", "conditioner.embedders.")

#: SDXL embeds each size/crop/score scalar with a 256-wide sinusoid (Podell et al. 2023).
SDXL_SIZE_EMBED = 256
V_PRED_NORM_STD = 0.09

META_NUM_HEADS = "weft.num_heads"
META_HEAD_CHANNELS = "weft.num_head_channels"
META_PREDICTION = "modelspec.prediction_type"

FAMILIES = ("sd1", "sd1_inpaint", "sd2", "sd2_v", "sd2_inpaint", "sdxl", "sdxl_refiner", "sd_x4")
#: SD 2.1 unCLIP: an SD 2.x UNet whose ADM label takes a CLIP image embedding and its noise-level
#: embedding (unCLIP-L 768 + 768, unCLIP-H 1024 + 1024); label width -> family. Their tiny test
#: files are written by ``ldm.vision.tiny``.
UNCLIP_FAMILIES = {1536: "sd2_unclip_l", 2048: "sd2_unclip_h"}


class DetectionError(ValueError):
    """Weights of a model this build does not recognise or support."""


@dataclass(frozen=True)
class Contents:
    """Which parts a state dict holds, and under which key prefix."""

    unet_prefix: str | None  # None: no UNet
    vae_prefix: str | None  # None: no VAE
    has_text: bool


@dataclass(frozen=True)
class UNetDetection:
    family: str
    prediction: str  # "eps" | "v"
    config: UNetConfig


def _has_prefix(state_dict: dict, prefix: str) -> bool:
    return any(k.startswith(prefix) for k in state_dict)


def find_contents(state_dict: dict) -> Contents:
    """Where the UNet, VAE and text encoders of a checkpoint (or a single-part file) live."""
    if _has_prefix(state_dict, UNET_PREFIX):
        unet_prefix = UNET_PREFIX
    elif "input_blocks.0.0.weight" in state_dict:
        unet_prefix = ""
    elif "conv_in.weight" in state_dict and _has_prefix(state_dict, "down_blocks."):
        raise DetectionError("diffusers-layout UNet files are not supported yet; use a single-file "
                             "(CompVis layout) checkpoint")
    else:
        unet_prefix = None
    if _has_prefix(state_dict, VAE_PREFIX + "encoder."):
        vae_prefix = VAE_PREFIX
    elif "encoder.conv_in.weight" in state_dict and "decoder.conv_in.weight" in state_dict:
        vae_prefix = ""  # a VAE-only file, CompVis or diffusers layout (renamed on load)
    else:
        vae_prefix = None
    has_text = any(_has_prefix(state_dict, p) for p in TEXT_PREFIXES)
    return Contents(unet_prefix, vae_prefix, has_text)


def _norm_bias_suggests_v(unet_sd: dict, config: UNetConfig) -> bool:
    last = len(config.transformer_depth_output) - 1
    bias = unet_sd.get(f"output_blocks.{last}.1.transformer_blocks.0.norm1.bias")
    return bias is not None and torch.std(bias.float(), unbiased=False).item() > V_PRED_NORM_STD


def _explicit_prediction(metadata: dict, markers: dict) -> str | None:
    if "v_pred" in markers:
        return "v"
    hint = str(metadata.get(META_PREDICTION, "")).strip().lower()
    if hint in ("v", "v_prediction", "v-prediction"):
        return "v"
    if hint in ("epsilon", "eps"):
        return "eps"
    return None


def _family(config: UNetConfig) -> str:
    c = config
    if c.num_classes is not None:
        if c.in_channels == 7:
            return "sd_x4"
        raise DetectionError(f"class-conditional UNet with {c.in_channels} input channels is not supported")
    if c.adm_in_channels is not None:
        # SD 2.x keeps attention at full resolution, which SDXL drops: that tells an unCLIP-H
        # label (2048) from an SDXL one of the same width.
        if c.adm_in_channels in UNCLIP_FAMILIES and c.use_linear_in_transformer and c.transformer_depth[0] > 0:
            if c.in_channels != 4:
                raise DetectionError(f"unCLIP UNet with {c.in_channels} input channels is not supported")
            return UNCLIP_FAMILIES[c.adm_in_channels]
        if c.context_dim is not None and c.adm_in_channels == c.context_dim + 5 * SDXL_SIZE_EMBED:
            family = "sdxl_refiner"
        elif c.adm_in_channels > 6 * SDXL_SIZE_EMBED:
            family = "sdxl"
        else:
            raise DetectionError(f"UNet with a {c.adm_in_channels}-wide label embedding (unCLIP?) "
                                 "is not supported yet")
        if c.in_channels != 4:
            raise DetectionError(f"{family} with {c.in_channels} input channels (inpainting/edit "
                                 "variant) is not supported yet")
        return family
    base = "sd2" if c.use_linear_in_transformer else "sd1"
    if c.in_channels == 4:
        return base
    if c.in_channels == 9:
        return base + "_inpaint"
    raise DetectionError(f"{base} UNet with {c.in_channels} input channels (instruct-pix2pix, "
                         "depth or other variant) is not supported yet")


def metadata_heads(metadata: dict, error: type[ValueError] = DetectionError) -> tuple[int, int] | None:
    """``(num_heads, num_head_channels)`` as a file's safetensors metadata sets them (-1 for the
    one it leaves out), or None where it sets neither; ``error`` is raised for non-integers."""
    if META_NUM_HEADS not in metadata and META_HEAD_CHANNELS not in metadata:
        return None
    try:
        return int(metadata.get(META_NUM_HEADS, -1)), int(metadata.get(META_HEAD_CHANNELS, -1))
    except ValueError:
        raise error(f"metadata {META_NUM_HEADS}/{META_HEAD_CHANNELS} are not integers") from None


def check_heads(config: UNetConfig, owner: str, error: type[ValueError] = DetectionError) -> None:
    """Raise ``error`` when a level's width does not split into ``config``'s heads: the file's
    metadata has to say how (``owner`` names the model in the message)."""
    for channels in {config.model_channels * m for m in config.channel_mult}:
        try:
            config.heads(channels)
        except UNetConfigError as exc:
            raise error(f"{owner}: {exc}; set safetensors metadata {META_NUM_HEADS} or "
                        f"{META_HEAD_CHANNELS}") from None


def _heads(family: str, metadata: dict) -> tuple[int, int]:
    found = metadata_heads(metadata)
    if found is not None:
        return found
    if family.startswith("sd1") or family == "sd_x4":
        return 8, -1
    return -1, 64


def detect_unet(unet_sd: dict, metadata: dict | None = None, markers: dict | None = None) -> UNetDetection:
    """Family, prediction type and config of UNet weights (keys without ``model.diffusion_model.``).

    ``markers`` are the checkpoint's top-level keys outside the model parts (e.g. ``v_pred``).
    """
    metadata = metadata or {}
    markers = markers or {}
    try:
        config = unet_config_from_state_dict(unet_sd)
    except UNetConfigError as exc:
        raise DetectionError(f"not a UNet this build can load: {exc}") from None
    family = _family(config)
    num_heads, head_channels = _heads(family, metadata)
    config = dataclasses.replace(config, num_heads=num_heads, num_head_channels=head_channels)
    check_heads(config, family)

    prediction = _explicit_prediction(metadata, markers)
    if prediction is None:
        sd2_layout = family == "sd2" or family in UNCLIP_FAMILIES.values()
        prediction = "v" if sd2_layout and _norm_bias_suggests_v(unet_sd, config) else "eps"
    if family == "sd2" and prediction == "v":
        family = "sd2_v"
    return UNetDetection(family=family, prediction=prediction, config=config)


def with_prediction(detection: UNetDetection, prediction: str) -> UNetDetection:
    """``detection`` with its prediction type overridden (SD 2.x families follow: sd2 <-> sd2_v)."""
    if prediction not in ("eps", "v"):
        raise ValueError(f"prediction must be 'eps' or 'v', got {prediction!r}")
    family = detection.family
    if family in ("sd2", "sd2_v"):
        family = "sd2_v" if prediction == "v" else "sd2"
    return dataclasses.replace(detection, family=family, prediction=prediction)


def head_metadata(config: UNetConfig) -> dict[str, str]:
    """Safetensors metadata that records ``config``'s head split (written by tiny files and saves)."""
    out = {}
    if config.num_heads > 0:
        out[META_NUM_HEADS] = str(config.num_heads)
    if config.num_head_channels > 0:
        out[META_HEAD_CHANNELS] = str(config.num_head_channels)
    return out
