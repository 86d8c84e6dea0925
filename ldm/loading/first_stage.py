"""Which first-stage autoencoder a state dict holds, read from its keys and shapes, and its module.

The LDM release has KL autoencoders (f4/f8/f16/f32 with 3/4/16/64 latent channels) and VQ ones
(f4 with and without attention, f8 with 16384 or 256 codes, f16), all in the CompVis layout:
``encoder.*``, ``decoder.*``, ``quant_conv.*``, ``post_quant_conv.*`` and, for VQ, the codebook
``quantize.embedding.weight`` [n_embed, embed_dim]. The kind is whether that codebook is there;
the rest (downsampling factor, latent width, attention layout) is
:func:`~ldm.networks.autoencoder.vae_config_from_state_dict`. Never a file name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ldm.loading.detect import DetectionError
from ldm.networks.autoencoder import AutoencoderKL, VaeConfig, VaeConfigError, vae_config_from_state_dict
from ldm.networks.ops import META, Operations
from ldm.networks.vq_autoencoder import VQAutoencoder

CODEBOOK_KEY = "quantize.embedding.weight"
KL, VQ = "kl", "vq"

#: LatentDiffusion's ``scale_factor`` when its config names none (CompVis ``ddpm.py``): every
#: released VQ LDM keeps 1.0; KL LDMs may set their own (SD's 0.18215 is in its latent format,
#: :mod:`ldm.latent_formats`), which the loader of such a checkpoint puts on the VAE handle.
DEFAULT_SCALE_FACTORS = {KL: 1.0, VQ: 1.0}


class FirstStageError(DetectionError):
    """Weights that are not a KL or VQ first stage this build can run."""


@dataclass(frozen=True)
class FirstStageSpec:
    """What a first-stage state dict holds: ``kind`` (``"kl"`` / ``"vq"``), the encoder/decoder
    structure, and the codebook size (VQ only)."""

    kind: str
    config: VaeConfig
    n_embed: int | None = None

    @property
    def downscale_ratio(self) -> int:
        return self.config.downscale_ratio

    @property
    def latent_channels(self) -> int:
        return self.config.embed_dim

    @property
    def default_scale_factor(self) -> float:
        return DEFAULT_SCALE_FACTORS[self.kind]

    def describe(self) -> str:
        """E.g. ``VQ-f4 (3 latent channels, 8192 codes, attention: none)``, for logs and errors."""
        places = [f"level {level}" for level in range(self.config.levels) if self.config.has_attn(level)]
        if self.config.mid_attn:
            places.append("middle")
        parts = [f"{self.latent_channels} latent channels"]
        if self.n_embed is not None:
            parts.append(f"{self.n_embed} codes")
        parts.append("attention: " + (", ".join(places) or "none"))
        return f"{self.kind.upper()}-f{self.downscale_ratio} ({', '.join(parts)})"


def _shape(state_dict: dict, key: str) -> tuple[int, ...]:
    return tuple(state_dict[key].shape) if key in state_dict else ()


def detect_first_stage(state_dict: dict[str, torch.Tensor]) -> FirstStageSpec:
    """The :class:`FirstStageSpec` of first-stage weights in CompVis layout (no key prefix).

    Raises :class:`FirstStageError` when the parts disagree: a codebook beside an encoder that
    emits a Gaussian's two moments, a codebook whose width is not the latent's, a one-latent
    encoder with no codebook, or a ``quant_conv`` that does not join the encoder to the latent.
    """
    try:
        config = vae_config_from_state_dict(state_dict)
    except VaeConfigError as error:
        raise FirstStageError(f"not a first-stage autoencoder: {error}") from error
    z, embed = config.z_channels, config.embed_dim
    codebook = _shape(state_dict, CODEBOOK_KEY)
    if not codebook:
        if not config.double_z:
            raise FirstStageError(f"the encoder emits one {z}-channel latent, as a VQ autoencoder's does, "
                                  f"but there is no codebook ({CODEBOOK_KEY!r}); a KL autoencoder's emits "
                                  f"{2 * z} (mean and log-variance)")
        spec = FirstStageSpec(KL, config)
        expected_quant = (2 * embed, 2 * z, 1, 1)
    else:
        if config.double_z:
            raise FirstStageError(f"the weights hold a codebook ({CODEBOOK_KEY!r}) but the encoder emits "
                                  f"{2 * z} channels, a KL autoencoder's mean and log-variance; a VQ "
                                  f"encoder emits z_channels = {z}")
        if len(codebook) != 2 or codebook[1] != embed:
            raise FirstStageError(f"the codebook {CODEBOOK_KEY!r} has shape {list(codebook)}, but its entries "
                                  f"must be {embed} wide: the latent's channels (post_quant_conv takes {embed})")
        spec = FirstStageSpec(VQ, config, n_embed=codebook[0])
        expected_quant = (embed, z, 1, 1)
    quant = _shape(state_dict, "quant_conv.weight")
    if quant != expected_quant:
        raise FirstStageError(f"{spec.kind.upper()} autoencoder: quant_conv.weight has shape "
                              f"{list(quant) or 'none'}, expected {list(expected_quant)} from the encoder "
                              f"({'2 x ' if config.double_z else ''}{z} channels) and post_quant_conv "
                              f"({embed} latent channels)")
    return spec


def build_first_stage(spec: FirstStageSpec, ops: Operations = META) -> AutoencoderKL | VQAutoencoder:
    """The module for ``spec``, built with ``ops`` (on the meta device by default, to adopt weights)."""
    if spec.kind == VQ:
        return VQAutoencoder(spec.config, spec.n_embed, ops)
    return AutoencoderKL(spec.config, ops)


def first_stage_kind(model: nn.Module) -> str:
    """``"vq"`` or ``"kl"`` for a built first-stage module."""
    if isinstance(model, VQAutoencoder):
        return VQ
    if isinstance(model, AutoencoderKL):
        return KL
    raise TypeError(f"not a first-stage autoencoder: {type(model).__name__}")
