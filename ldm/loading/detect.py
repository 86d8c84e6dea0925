"""What a checkpoint holds and which model family it is, from its keys and tensor shapes only.

File names are never consulted. The rules (documented in docs/models.md):

* UNet in CompVis layout under ``model.diffusion_model.`` (or unprefixed in a UNet-only file),
  KL VAE under ``first_stage_model.`` (or unprefixed), text encoders under
  ``cond_stage_model.`` / ``conditioner.embedders.``.
* Family from the UNet's shapes, and from the other parts of the checkpoint where the UNet alone
  cannot tell (:class:`CheckpointStructure`):

  - an ``Embedding`` label (noise levels) and 7 input channels is the x4 upscaler;
  - an ADM label MLP is SDXL. With SDXL text encoders in the file (``conditioner.embedders.N``)
    the widths follow from them: two encoders (CLIP-L, bigG) are the base model, one (bigG) the
    refiner; the context width is the sum of the encoders' widths, the pooled width is the
    (last) encoder's ``text_projection`` width, and ``adm_in_channels - pooled`` must be 6 (base:
    height, width, crop top, crop left, target height, target width) or 5 (refiner: ... aesthetic
    score) equal size embeddings, whose width goes into ``UNetConfig.size_embed_dim``. Without
    text encoders (UNet-only files) the published 256-wide size embeddings are assumed (or
    safetensors metadata ``weft.sdxl_size_embed``): refiner when
    ``adm_in_channels == context_dim + 5*size`` (its bigG projection is as wide as its context),
    base when wider than ``6*size``; unless the label is 1536 or 2048 wide on an SD 2.x layout
    (attention at full resolution): SD 2.1 unCLIP-L / -H;
  - ADM's ``AttentionBlock`` (``qkv`` keys) instead of spatial transformers is a CompVis LDM
    without cross-attention: ``ldm_uncond`` when input and output channels agree (CelebA-HQ,
    FFHQ, LSUN), ``ldm_concat`` when the input is wider (the conditioning is concatenated on
    channels: semantic synthesis, super-resolution, inpainting);
  - spatial transformers over a context as wide as the checkpoint's LDM class embedding
    (``cond_stage_model.embedding.weight`` [classes, width]) is the class-conditional ImageNet
    LDM ``ldm_cin`` (the class vector is a one-token context; a cin UNet without its checkpoint
    looks like SD 1.x and is detected as such);
  - spatial transformers beside an LDM BERT whose vocabulary is not WordPiece's (the layout
    encoder, :mod:`ldm.cond_stage.layout_encoder`) as wide as the context is the layout-to-image
    LDM ``ldm_layout`` (OpenImages);
  - otherwise linear transformer projections mean SD 2.x and 1x1-conv projections SD 1.x, with
    9 input channels for the inpainting variants.
* Prediction: explicit markers win (a ``v_pred`` key, safetensors metadata
  ``modelspec.prediction_type``); otherwise SD 2.x is v-prediction when the first transformer
  block of the last output block has ``norm1.bias`` with population std > 0.09 (the statistic
  ComfyUI uses on ``output_blocks.11.1.transformer_blocks.0.norm1.bias``); inpainting and the
  CompVis LDMs are eps.
* Head split (not visible in shapes): metadata ``weft.num_heads`` / ``weft.num_head_channels``
  when present, else the family convention: SD 1.x and the x4 upscaler 8 heads, SD 2.x and SDXL
  64 channels per head; the CompVis LDMs as their published configs set it
  (:data:`PUBLISHED_LDM_HEADS`, by shape; 32 channels per head for the others, the configs'
  usual ``num_head_channels``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ldm.cond_stage.layout_encoder import layout_encoder_width
from ldm.networks.unet import SIZE_EMBED_DIM, UNetConfig, UNetConfigError, unet_config_from_state_dict
from ldm.text.layouts import HF, find_encoder

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SDXL_TEXT_PREFIX = "conditioner.embedders."
TEXT_PREFIXES = ("cond_stage_model.", SDXL_TEXT_PREFIX)
#: The class-conditional LDM's ``ClassEmbedder``: one learned vector per class, [classes, width].
CLASS_EMBEDDING_KEY = "cond_stage_model.embedding.weight"

#: SDXL embeds each size/crop/score scalar with a 256-wide sinusoid (Podell et al. 2023).
SDXL_SIZE_EMBED = SIZE_EMBED_DIM
#: The scalars SDXL's label embeds after the pooled text vector, in order (sec. 2.2 of the paper).
SDXL_SIZE_VALUES = {"sdxl": ("height", "width", "crop top", "crop left", "target height", "target width"),
                    "sdxl_refiner": ("height", "width", "crop top", "crop left", "aesthetic score")}
V_PRED_NORM_STD = 0.09

META_NUM_HEADS = "weft.num_heads"
META_HEAD_CHANNELS = "weft.num_head_channels"
META_PREDICTION = "modelspec.prediction_type"
META_SIZE_EMBED = "weft.sdxl_size_embed"

FAMILIES = ("sd1", "sd1_inpaint", "sd2", "sd2_v", "sd2_inpaint", "sdxl", "sdxl_refiner", "sd_x4")
#: SD 2.1 unCLIP: an SD 2.x UNet whose ADM label takes a CLIP image embedding and its noise-level
#: embedding (unCLIP-L 768 + 768, unCLIP-H 1024 + 1024); label width -> family. Their tiny test
#: files are written by ``ldm.vision.tiny``.
UNCLIP_FAMILIES = {1536: "sd2_unclip_l", 2048: "sd2_unclip_h"}
#: The CompVis latent-diffusion UNets of the paper (Rombach et al. 2022): unconditional,
#: class-conditional (ImageNet, cross-attention on the class vector), concat-conditioned,
#: layout-to-image (cross-attention on the layout encoder's output).
LDM_FAMILIES = ("ldm_uncond", "ldm_cin", "ldm_concat", "ldm_layout")
#: Head splits of the published CompVis LDM UNets that do not use 32 channels per head, keyed by
#: (model_channels, channel_mult, in_channels, out_channels, context_dim) -> (num_heads,
#: num_head_channels), from ``models/ldm/*/config.yaml`` and ``configs/latent-diffusion/*.yaml``.
PUBLISHED_LDM_HEADS = {
    (192, (1, 2, 2, 4, 4), 4, 4, None): (8, -1),  # LSUN churches (KL-f8 latents)
    (128, (1, 4, 8), 6, 3, None): (8, -1),  # semantic synthesis 256 / 512
    (256, (1, 2, 3, 4), 7, 3, None): (8, -1),  # the big inpainting model
    (192, (1, 2, 3, 5), 3, 3, 512): (1, -1),  # ImageNet cin256-v2
}
LDM_HEAD_CHANNELS = 32


class DetectionError(ValueError):
    """Weights of a model this build does not recognise or support."""


@dataclass(frozen=True)
class Contents:
    """Which parts a state dict holds, and under which key prefix."""

    unet_prefix: str | None  # None: no UNet
    vae_prefix: str | None  # None: no VAE
    has_text: bool


@dataclass(frozen=True)
class TextTower:
    """A text encoder as its shapes show it."""

    width: int  # hidden width: what it contributes to the cross-attention context
    projection: int | None  # width of its ``text_projection`` output (the pooled vector); None: none


@dataclass(frozen=True)
class CheckpointStructure:
    """What a checkpoint's other parts tell about its UNet; empty for a UNet-only file."""

    sdxl_text: tuple[TextTower, ...] = ()  # the encoders under conditioner.embedders.N, in order
    class_embedding: tuple[int, int] | None = None  # LDM ClassEmbedder [classes, width]
    layout_context: int | None = None  # width of an LDM layout encoder (ldm.cond_stage.layout_encoder)


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


def _text_tower(state_dict: dict, prefix: str) -> TextTower | None:
    found = find_encoder(state_dict, prefix)
    if found is None:
        return None
    layout, full_prefix = found
    if layout == HF:  # transformers' CLIPTextModel(WithProjection): projection weight [P, D]
        width = state_dict[full_prefix + "text_model.embeddings.token_embedding.weight"].shape[1]
        projection = state_dict.get(full_prefix + "text_projection.weight")
        return TextTower(int(width), None if projection is None else int(projection.shape[0]))
    width = int(state_dict[full_prefix + "token_embedding.weight"].shape[1])
    projection = state_dict.get(full_prefix + "text_projection")  # OpenCLIP's [D, P], applied as x @ P
    if projection is not None:
        return TextTower(width, int(projection.shape[1]))
    # diffusers' convert_diffusers_to_original_sdxl.py keeps HF's Linear weight [P, D] here
    projection = state_dict.get(full_prefix + "text_projection.weight")
    return TextTower(width, None if projection is None else int(projection.shape[0]))


def checkpoint_structure(state_dict: dict) -> CheckpointStructure:
    """The text encoders under ``conditioner.embedders.N`` and the LDM class embedding of a
    whole checkpoint (widths only)."""
    indices = set()
    for key in state_dict:
        if key.startswith(SDXL_TEXT_PREFIX):
            index = key[len(SDXL_TEXT_PREFIX):].split(".", 1)[0]
            if index.isdigit():
                indices.add(int(index))
    towers = tuple(tower for i in sorted(indices)
                   if (tower := _text_tower(state_dict, f"{SDXL_TEXT_PREFIX}{i}.")) is not None)
    embedding = state_dict.get(CLASS_EMBEDDING_KEY)
    class_embedding = None
    if embedding is not None and embedding.ndim == 2:
        class_embedding = (int(embedding.shape[0]), int(embedding.shape[1]))
    return CheckpointStructure(sdxl_text=towers, class_embedding=class_embedding,
                               layout_context=layout_encoder_width(state_dict))


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


def _metadata_int(metadata: dict, key: str) -> int | None:
    if key not in metadata:
        return None
    try:
        value = int(metadata[key])
    except ValueError:
        raise DetectionError(f"metadata {key} is not an integer: {metadata[key]!r}") from None
    if value <= 0:
        raise DetectionError(f"metadata {key} must be positive, got {value}")
    return value


def _sdxl_from_text(config: UNetConfig, adm: int, towers: tuple[TextTower, ...]) -> tuple[str, int]:
    """``(family, size_embed_dim)`` of an SDXL UNet (label ``adm`` wide) from the checkpoint's text
    encoders."""
    if len(towers) == 2:  # base: CLIP-L + bigG, pooled from bigG
        family, pooled_from = "sdxl", towers[1]
    elif len(towers) == 1:  # refiner: bigG only
        family, pooled_from = "sdxl_refiner", towers[0]
    else:
        raise DetectionError(f"{len(towers)} text encoders under {SDXL_TEXT_PREFIX!r}: SDXL has two "
                             "(base) or one (refiner)")
    context = sum(tower.width for tower in towers)
    if config.context_dim != context:
        raise DetectionError(
            f"{family}: the UNet attends to a {config.context_dim}-wide context but the text encoders "
            f"give {' + '.join(str(t.width) for t in towers)} = {context}")
    if pooled_from.projection is None:
        raise DetectionError(f"{family}: the text encoder that gives the pooled vector has no text_projection")
    values = SDXL_SIZE_VALUES[family]
    rest = adm - pooled_from.projection
    if rest <= 0 or rest % len(values):
        raise DetectionError(
            f"{family}: the UNet's label embedding takes {adm} values and the pooled "
            f"text gives {pooled_from.projection}; the other {rest} are not {len(values)} equal size "
            f"embeddings ({', '.join(values)})")
    return family, rest // len(values)


def _sdxl_by_convention(config: UNetConfig, adm: int, metadata: dict) -> tuple[str, int]:
    """``(family, size_embed_dim)`` of an SDXL UNet (label ``adm`` wide) without its text encoders:
    the published widths, or the metadata's."""
    size = _metadata_int(metadata, META_SIZE_EMBED) or SDXL_SIZE_EMBED
    if config.context_dim is not None and adm == config.context_dim + len(SDXL_SIZE_VALUES["sdxl_refiner"]) * size:
        return "sdxl_refiner", size
    if adm > len(SDXL_SIZE_VALUES["sdxl"]) * size:
        return "sdxl", size
    raise DetectionError(
        f"UNet with a {adm}-wide label embedding is not supported: it is neither SDXL's pooled text + "
        f"6 x {size} size embeddings (base) nor its context width + 5 x {size} (refiner), and the file "
        f"holds no SDXL text encoders to read the widths from (set safetensors metadata "
        f"{META_SIZE_EMBED} to the size-embedding width of a UNet-only SDXL file)")


def _ldm_without_cross_attention(config: UNetConfig) -> str:
    """``ldm_uncond`` / ``ldm_concat``: a CompVis LDM UNet with ADM attention blocks."""
    c = config
    if c.num_classes is not None or c.adm_in_channels is not None:
        raise DetectionError("a UNet with ADM attention blocks and a label embedding (ADM class-conditional) "
                             "is not supported")
    if c.in_channels == c.out_channels:
        return "ldm_uncond"
    if c.in_channels > c.out_channels:
        return "ldm_concat"
    raise DetectionError(f"a UNet with ADM attention blocks, {c.in_channels} input and {c.out_channels} output "
                         "channels is neither an unconditional LDM (as many in as out) nor a concat-conditioned "
                         "one (more in than out)")


def _cross_attention_ldm(config: UNetConfig, family: str, stage: str, described: str, width: int) -> str:
    """``family`` when the checkpoint's conditioning ``stage`` (``described`` with its shape) gives
    the UNet's context width and the UNet is a CompVis LDM one (conv projections, as many input as
    output channels)."""
    if config.context_dim != width:
        raise DetectionError(f"the checkpoint's {described} does not fit the UNet's "
                             f"{config.context_dim}-wide cross-attention context")
    if config.use_linear_in_transformer or config.in_channels != config.out_channels:
        raise DetectionError(f"a {stage} beside a UNet that is not a CompVis LDM one (linear "
                             "transformer projections or concatenated inputs) is not supported")
    return family


def _class_conditional(config: UNetConfig, embedding: tuple[int, int]) -> str:
    classes, width = embedding
    return _cross_attention_ldm(config, "ldm_cin", "class embedding", f"class embedding [{classes}, {width}]", width)


def _layout_conditional(config: UNetConfig, width: int) -> str:
    return _cross_attention_ldm(config, "ldm_layout", "layout encoder", f"{width}-wide layout encoder", width)


def _family(config: UNetConfig, structure: CheckpointStructure, metadata: dict) -> tuple[str, UNetConfig]:
    """The family and the config with what the family fixes beyond shapes (SDXL's size width)."""
    c = config
    if c.legacy_attention:
        return _ldm_without_cross_attention(c), c
    if c.num_classes is not None:
        if c.in_channels == 7:
            return "sd_x4", c
        raise DetectionError(f"class-conditional UNet with {c.in_channels} input channels is not supported")
    if c.adm_in_channels is not None:
        if structure.sdxl_text:
            family, size = _sdxl_from_text(c, c.adm_in_channels, structure.sdxl_text)
        # SD 2.x keeps attention at full resolution, which SDXL drops: that tells an unCLIP-H
        # label (2048) from an SDXL one of the same width.
        elif c.adm_in_channels in UNCLIP_FAMILIES and c.use_linear_in_transformer and c.transformer_depth[0] > 0:
            if c.in_channels != 4:
                raise DetectionError(f"unCLIP UNet with {c.in_channels} input channels is not supported")
            return UNCLIP_FAMILIES[c.adm_in_channels], c
        else:
            family, size = _sdxl_by_convention(c, c.adm_in_channels, metadata)
        if c.in_channels != 4:
            raise DetectionError(f"{family} with {c.in_channels} input channels (inpainting/edit "
                                 "variant) is not supported yet")
        return family, dataclasses.replace(c, size_embed_dim=size)
    if structure.class_embedding is not None:
        return _class_conditional(c, structure.class_embedding), c
    if structure.layout_context is not None:
        return _layout_conditional(c, structure.layout_context), c
    base = "sd2" if c.use_linear_in_transformer else "sd1"
    if c.in_channels == 4:
        return base, c
    if c.in_channels == 9:
        return base + "_inpaint", c
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


def _heads(family: str, config: UNetConfig, metadata: dict) -> tuple[int, int]:
    found = metadata_heads(metadata)
    if found is not None:
        return found
    if family in LDM_FAMILIES:
        fingerprint = (config.model_channels, config.channel_mult, config.in_channels, config.out_channels,
                       config.context_dim)
        return PUBLISHED_LDM_HEADS.get(fingerprint, (-1, LDM_HEAD_CHANNELS))
    if family.startswith("sd1") or family == "sd_x4":
        return 8, -1
    return -1, 64


def detect_unet(unet_sd: dict, metadata: dict | None = None, markers: dict | None = None,
                structure: CheckpointStructure | None = None) -> UNetDetection:
    """Family, prediction type and config of UNet weights (keys without ``model.diffusion_model.``).

    ``markers`` are the checkpoint's top-level keys outside the model parts (e.g. ``v_pred``);
    ``structure`` is what the rest of the checkpoint shows (:func:`checkpoint_structure`; None for
    a UNet on its own).
    """
    metadata = metadata or {}
    markers = markers or {}
    try:
        config = unet_config_from_state_dict(unet_sd)
    except UNetConfigError as exc:
        raise DetectionError(f"not a UNet this build can load: {exc}") from None
    family, config = _family(config, structure or CheckpointStructure(), metadata)
    num_heads, head_channels = _heads(family, config, metadata)
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
    """Safetensors metadata that records what ``config``'s shapes do not show (written by tiny
    files and saves): the head split, and SDXL's size-embedding width where it is not 256 (a
    UNet-only file has no text encoders to tell it)."""
    out = {}
    if config.num_heads > 0:
        out[META_NUM_HEADS] = str(config.num_heads)
    if config.num_head_channels > 0:
        out[META_HEAD_CHANNELS] = str(config.num_head_channels)
    if config.adm_in_channels is not None and config.size_embed_dim != SDXL_SIZE_EMBED:
        out[META_SIZE_EMBED] = str(config.size_embed_dim)
    return out
