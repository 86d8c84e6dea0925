"""``ModelHandle`` (the ``MODEL`` value) and assembling models from single-file checkpoints.

``load_checkpoint(path)`` reads a file once (memory-mapped), finds its parts by key prefix,
detects the family from the UNet's shapes, builds the UNet and VAE on the meta device and lets
them adopt the file's tensors (no copy, storage dtype kept), and hands the text-encoder weights to
``ldm.text.build_clip``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch

from ldm import text
from ldm.devices import ComputeSettings, detect_compute
from ldm.latent_formats import FAMILY_LATENT_FORMATS, LatentFormat, ldm_latent_format
from ldm.cond_stage.layout_stage import build_layout_stage
from ldm.cond_stage.stages import UnconditionalStage, build_class_stage, build_semantic_stage
from ldm.loading.checkpoint import load_state_dict
from ldm.loading.detect import (CLASS_EMBEDDING_KEY, LDM_FAMILIES, DetectionError, UNetDetection,
                                checkpoint_structure, detect_unet, find_contents, with_prediction)
from ldm.loading.first_stage import build_first_stage, detect_first_stage
from ldm.loading.ldm_checkpoint import CHANNEL_MAPPER_KEY, CLASS, LAYOUT, SEMANTIC, TEXT, read_ldm_facts
from ldm.loading.vae_keys import diffusers_vae_to_ldm, is_diffusers_vae
from ldm.loading.weights import adopt_weights, strip_prefix
from ldm.model_patching import ModelPatcherMethods
from ldm.networks.autoencoder import normalize_vae_weights
from ldm.networks.unet import UNetConfig, UNetModel
from ldm.sampling.hooks import SamplingHooks
from ldm.sampling.model_sampling import ScheduleConfig
from ldm.text.ldm_bert import find_ldm_bert
from ldm.text.ldm_bert_handle import build_ldm_bert_handle
from ldm.vae import VaeHandle

log = logging.getLogger(__name__)

#: ``UNETLoader.weight_dtype`` choices -> storage dtype (None keeps the file's dtype).
WEIGHT_DTYPES = {
    "default": None,
    "fp8_e4m3fn": torch.float8_e4m3fn,
    "fp8_e4m3fn_fast": torch.float8_e4m3fn,  # fast fp8 matmul needs an fp8 GPU; same storage here
    "fp8_e5m2": torch.float8_e5m2,
}


@dataclass(eq=False)
class ModelHandle(ModelPatcherMethods):
    """A diffusion model plus what sampling needs to know about it.

    ``patches`` maps weight keys to lists of patches (LoRA); ``hooks`` holds what patch nodes
    attach to sampling (:class:`~ldm.sampling.hooks.SamplingHooks`). ``clone()`` shares ``unet``
    (the weights) and copies both, so patching a clone never changes the original.
    ``device``/``dtype`` are where and in which dtype the UNet should compute; its layers cast
    their stored weights to the input's dtype per call. ComfyUI's ``ModelPatcher`` methods come
    from :class:`~ldm.model_patching.ModelPatcherMethods`, so node packs use this same object.
    """

    unet: UNetModel
    config: UNetConfig
    family: str
    prediction: str
    latent_format: LatentFormat
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    patches: dict = field(default_factory=dict)
    hooks: SamplingHooks = field(default_factory=SamplingHooks)
    #: The model's own noise schedule (a CompVis LDM's, read from its checkpoint); None: the family's.
    schedule: ScheduleConfig | None = None

    def clone(self) -> "ModelHandle":
        return ModelHandle(
            unet=self.unet, config=self.config, family=self.family, prediction=self.prediction,
            latent_format=self.latent_format, device=self.device, dtype=self.dtype, schedule=self.schedule,
            patches={key: list(value) for key, value in self.patches.items()},
            hooks=self.hooks.clone())


def _compute(compute: ComputeSettings | None) -> ComputeSettings:
    return compute if compute is not None else detect_compute()


def build_unet(unet_sd: dict[str, torch.Tensor], detection: UNetDetection, *,
               compute: ComputeSettings | None = None,
               weight_dtype: torch.dtype | None = None, latent_format: LatentFormat | None = None,
               schedule: ScheduleConfig | None = None) -> ModelHandle:
    """A :class:`ModelHandle` whose UNet adopts ``unet_sd`` (keys without prefix).

    ``latent_format`` / ``schedule`` default to the family's; the CompVis LDM families have none
    (their latent space is their own first stage's and their schedule differs per model), so
    only a whole checkpoint, which carries both, loads them (:func:`assemble_checkpoint`)."""
    compute = _compute(compute)
    if latent_format is None:
        if detection.family not in FAMILY_LATENT_FORMATS:
            raise DetectionError(f"{detection.family} UNets load only from their whole checkpoint (the first "
                                 "stage and the schedule buffers in it fix the latent format and the noise "
                                 "schedule); use CheckpointLoaderSimple")
        latent_format = FAMILY_LATENT_FORMATS[detection.family]
    if weight_dtype is not None:
        unet_sd = {k: v.to(weight_dtype) if v.is_floating_point() else v for k, v in unet_sd.items()}
    unet = UNetModel(detection.config)
    adopt_weights(unet, unet_sd, what=f"{detection.family} UNet")
    return ModelHandle(unet=unet, config=detection.config, family=detection.family,
                       prediction=detection.prediction, latent_format=latent_format,
                       device=compute.device, dtype=compute.dtype, schedule=schedule)


def build_vae(vae_sd: dict[str, torch.Tensor], *, compute: ComputeSettings | None = None,
              free_memory=None) -> VaeHandle:
    """A :class:`VaeHandle` whose first stage (KL or VQ autoencoder, :mod:`ldm.loading.first_stage`)
    adopts ``vae_sd`` (keys without prefix)."""
    compute = _compute(compute)
    if is_diffusers_vae(vae_sd):
        vae_sd = diffusers_vae_to_ldm(vae_sd)
    vae_sd = normalize_vae_weights(vae_sd)
    spec = detect_first_stage(vae_sd)
    model = build_first_stage(spec)
    # Training-only tensors (e.g. the LPIPS loss) ride along in some VAE files.
    report = adopt_weights(model, {k: v for k, v in vae_sd.items() if not k.startswith("loss.")},
                           what=f"VAE {spec.describe()}", allow_unexpected=True)
    if report.unexpected:
        log.info("VAE: ignored %d unexpected weights, e.g. %s", len(report.unexpected), report.unexpected[:3])
    return VaeHandle(model, device=compute.vae_device, dtype=compute.vae_dtype, free_memory=free_memory,
                     fallback_dtype=compute.vae_fallback_dtype)


def build_clip(state_dict: dict, family: str, embedding_dirs=()):
    """The text encoders of a full checkpoint (``ldm.text``)."""
    return text.build_clip(state_dict, family, embedding_dirs=tuple(embedding_dirs))


def load_checkpoint(path: str | os.PathLike, *, compute: ComputeSettings | None = None,
                    embedding_dirs=(), with_clip: bool = True, prediction: str | None = None):
    """``(ModelHandle, ClipHandle | None, VaeHandle)`` from a single-file checkpoint.

    The CLIP output is ``None`` when the file holds no text encoder (as ComfyUI does). ``prediction`` ("eps" / "v")
    overrides the detected prediction type (e.g. from an LDM YAML's ``parameterization``).
    Raises ``CheckpointError`` for unreadable files and ``DetectionError`` / ``WeightsError`` for
    unsupported or broken models.
    """
    state_dict, metadata = load_state_dict(path)
    return assemble_checkpoint(state_dict, metadata, path, compute=compute, embedding_dirs=embedding_dirs,
                               with_clip=with_clip, prediction=prediction)


def assemble_checkpoint(state_dict: dict, metadata: dict, path: str | os.PathLike, *,
                        compute: ComputeSettings | None = None, embedding_dirs=(), with_clip: bool = True,
                        prediction: str | None = None):
    """:func:`load_checkpoint` on a state dict already read from ``path`` (named in errors), for
    loaders that take more parts from the same file (unCLIP's vision tower)."""
    contents = find_contents(state_dict)
    if contents.unet_prefix is None:
        raise DetectionError(f"{path}: no diffusion model (UNet) weights found")
    if contents.vae_prefix is None:
        raise DetectionError(f"{path}: no VAE weights found (a UNet-only file belongs in "
                             "models/diffusion_models and loads with UNETLoader)")
    compute = _compute(compute)
    unet_sd = strip_prefix(state_dict, contents.unet_prefix)
    # The text encoders' widths fix what the UNet's shapes leave open (SDXL's size embeddings).
    detection = detect_unet(unet_sd, metadata, markers=state_dict, structure=checkpoint_structure(state_dict))
    if prediction is not None:
        detection = with_prediction(detection, prediction)
    vae = build_vae(strip_prefix(state_dict, contents.vae_prefix), compute=compute)
    if is_compvis_ldm(state_dict, detection.family):
        model, clip = _assemble_compvis_ldm(state_dict, unet_sd, detection, vae, compute, with_clip)
        log.info("loaded %s: CompVis LDM, %s", path, describe_ldm(model, vae))
        return model, clip, vae
    model = build_unet(unet_sd, detection, compute=compute)
    clip = None
    if with_clip and contents.has_text:
        clip = build_clip(state_dict, detection.family, embedding_dirs)
    log.info("loaded %s: %s (%s-prediction)", path, detection.family, detection.prediction)
    return model, clip, vae


def is_compvis_ldm(state_dict: dict, family: str) -> bool:
    """The paper's own models: the LDM UNet families, or an SD1-shaped UNet beside the LDM BERT
    text encoder (txt2img-1p4B, detected as ``sd1``: the same UNet with a 1280-wide context)."""
    return family in LDM_FAMILIES or find_ldm_bert(state_dict) is not None


def _assemble_compvis_ldm(state_dict: dict, unet_sd: dict, detection: UNetDetection, vae: VaeHandle,
                          compute: ComputeSettings, with_clip: bool):
    """``(ModelHandle, conditioning stage)`` of a CompVis LDM: schedule and latent scale from the
    checkpoint (:mod:`ldm.loading.ldm_checkpoint`), set on the VAE too; the CLIP socket gets the
    model's conditioning stage (:mod:`ldm.cond_stage.stages`, the layout stage of
    :mod:`ldm.cond_stage.layout_stage`, or the LDM BERT handle)."""
    config = detection.config
    facts = read_ldm_facts(state_dict, detection.family, config.in_channels, config.out_channels, vae.kind)
    vae.scale_factor = facts.scale_factor
    channels = vae.config.embed_dim
    family_format = FAMILY_LATENT_FORMATS.get(detection.family)
    if (family_format is not None and family_format.channels == channels
            and family_format.scale_factor == facts.scale_factor):
        latent_format = family_format  # txt2img's KL-f8 is SD's autoencoder: keep its previews
    else:
        latent_format = ldm_latent_format(vae.kind, channels, facts.scale_factor, vae.downscale_ratio)
    model = build_unet(unet_sd, detection, compute=compute, latent_format=latent_format, schedule=facts.schedule)
    if not with_clip:
        return model, None
    if facts.conditioning == TEXT:
        return model, build_ldm_bert_handle(state_dict)
    if facts.conditioning == CLASS:
        return model, build_class_stage(state_dict[CLASS_EMBEDDING_KEY])
    if facts.conditioning == LAYOUT:
        return model, build_layout_stage(state_dict)
    if facts.conditioning == SEMANTIC:
        return model, build_semantic_stage(state_dict[CHANNEL_MAPPER_KEY], vae.downscale_ratio)
    return model, UnconditionalStage()


def describe_ldm(model: ModelHandle, vae: VaeHandle) -> str:
    schedule = model.schedule
    betas = "" if schedule is None else f", betas {schedule.linear_start}..{schedule.linear_end}"
    return (f"{model.family}, {vae.kind.upper()}-f{vae.downscale_ratio} first stage, "
            f"scale factor {model.latent_format.scale_factor}{betas}")


def load_unet(path: str | os.PathLike, *, weight_dtype: str = "default",
              compute: ComputeSettings | None = None) -> ModelHandle:
    """A UNet-only file (or the UNet of a full checkpoint) as a :class:`ModelHandle`."""
    if weight_dtype not in WEIGHT_DTYPES:
        raise ValueError(f"weight_dtype must be one of {sorted(WEIGHT_DTYPES)}, got {weight_dtype!r}")
    state_dict, metadata = load_state_dict(path)
    contents = find_contents(state_dict)
    if contents.unet_prefix is None:
        raise DetectionError(f"{path}: no UNet weights in CompVis layout found")
    unet_sd = strip_prefix(state_dict, contents.unet_prefix)
    detection = detect_unet(unet_sd, metadata, markers=state_dict, structure=checkpoint_structure(state_dict))
    return build_unet(unet_sd, detection, compute=compute, weight_dtype=WEIGHT_DTYPES[weight_dtype])


def load_vae(path: str | os.PathLike, *, compute: ComputeSettings | None = None) -> VaeHandle:
    """A VAE-only file (or the VAE of a full checkpoint) as a :class:`VaeHandle`."""
    state_dict, _ = load_state_dict(path)
    contents = find_contents(state_dict)
    if contents.vae_prefix is None:
        raise DetectionError(f"{path}: no KL-autoencoder weights in CompVis layout found")
    return build_vae(strip_prefix(state_dict, contents.vae_prefix), compute=compute)
