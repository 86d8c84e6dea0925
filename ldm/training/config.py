"""What a training run is: architectures and hyper-parameters as frozen dataclasses.

The two stages of latent diffusion (Rombach et al. 2022, sec. 3): a KL-regularised autoencoder
first (:class:`AutoencoderTraining`), then a UNet in its frozen latent space with a text encoder
trained jointly (:class:`DiffusionTraining`). :class:`Architecture` fixes the three networks'
shapes; :data:`STARTER` is the one the shipped starter model uses.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from ldm.networks.autoencoder import VaeConfig
from ldm.networks.unet import UNetConfig
from ldm.text.clip_model import ClipTextConfig
from ldm.text.layouts import ACTIVATION_OF_KIND, heads_for_width

#: SD1's cross-attention transformers project in and out with 1x1 convolutions (``proj_in``);
#: keeping that makes a Weft-trained model detect as family ``sd1``.
SD1_KIND = "clip_l"


def small_unet(model_channels: int, channel_mult: tuple[int, ...], res_blocks: int, context_dim: int,
               head_channels: int = 32, attention: tuple[bool, ...] | None = None) -> UNetConfig:
    """An SD1-layout UNet: 4 latent channels, eps output, a transformer after every ResBlock of
    the levels where ``attention`` is true (default: all) and in the middle block."""
    levels = len(channel_mult)
    attention = attention or (True,) * levels
    per_level = [1 if attention[level] else 0 for level in range(levels)]
    return UNetConfig(
        in_channels=4, out_channels=4, model_channels=model_channels, channel_mult=channel_mult,
        num_res_blocks=(res_blocks,) * levels,
        transformer_depth=tuple(d for d in per_level for _ in range(res_blocks)),
        transformer_depth_middle=1,
        transformer_depth_output=tuple(d for d in reversed(per_level) for _ in range(res_blocks + 1)),
        context_dim=context_dim, use_linear_in_transformer=False, num_head_channels=head_channels)


def small_text_encoder(width: int, layers: int) -> ClipTextConfig:
    """A CLIP-architecture text transformer (quick-GELU, causal, 77 positions, the full
    49408-token vocabulary the shipped tokenizer produces). Its head count is the one the loader
    derives from the width, so a saved model reads back identically."""
    return ClipTextConfig(width=width, layers=layers, heads=heads_for_width(width), mlp_width=4 * width,
                          activation=ACTIVATION_OF_KIND[SD1_KIND])


@dataclass(frozen=True)
class Architecture:
    vae: VaeConfig
    unet: UNetConfig
    text: ClipTextConfig
    image_size: int  # the resolution the model is trained at

    def __post_init__(self):
        if self.unet.context_dim != self.text.width:
            raise ValueError(f"the UNet attends to {self.unet.context_dim}-wide context, "
                             f"the text encoder gives {self.text.width}")
        if self.image_size % self.vae.downscale_ratio:
            raise ValueError(f"image size {self.image_size} is not a multiple of the autoencoder's "
                             f"downsampling factor {self.vae.downscale_ratio}")


@dataclass(frozen=True)
class AutoencoderTraining:
    """Stage 1: reconstruction (L1 + image-gradient L1) + KL, then a patch discriminator.

    Losses are sums over an image's pixels (latent elements for the KL) averaged over the batch,
    as in the paper's ``LPIPSWithDiscriminator``; the adversarial term's weight is adapted so its
    gradient at the decoder's last layer matches the reconstruction's (Esser et al. 2021).
    """

    steps: int = 3000
    batch_size: int = 8
    learning_rate: float = 2e-4
    final_learning_rate: float = 2e-5  # cosine decay to this
    warmup_steps: int = 100
    kl_weight: float = 1e-6
    edge_weight: float = 1.0  # L1 between horizontal/vertical pixel differences: sharp edges
    thumbnail_steps: int = 300  # warm start: latents pulled towards the image's thumbnail ...
    thumbnail_fade: int = 300  # ... then the pull fades out over this many steps
    discriminator_start: int = 1500  # adversarial loss switched on after this many steps
    discriminator_weight: float = 0.5
    discriminator_channels: int = 32
    seed: int = 0
    precision: str = "auto"  # "auto" (bf16 where the CPU/GPU has it), "bf16", "fp32"
    save_every: int = 250
    preview_every: int = 250


@dataclass(frozen=True)
class DiffusionTraining:
    """Stage 2: eps- or v-prediction on the DDPM schedule of the SD models (scaled-linear betas
    0.00085 … 0.012, 1000 steps), captions dropped ``caption_dropout`` of the time so
    classifier-free guidance works, min-SNR-gamma loss weights (Hang et al. 2023), EMA weights."""

    steps: int = 5000
    batch_size: int = 32
    learning_rate: float = 3e-4
    final_learning_rate: float = 3e-5  # cosine decay to this
    warmup_steps: int = 200
    caption_dropout: float = 0.1
    min_snr_gamma: float = 5.0  # 0 disables the weighting
    min_x0_weight: float = 0.0  # floor of the clean-image loss weight at high noise (min_snr_weights)
    high_noise_fraction: float = 0.0  # share of each batch drawn from timesteps >= high_noise_from
    high_noise_from: int = 900
    low_frequency_noise: float = 0.0  # weight of coarse-grid noise (diffusion.low_frequency_noise)
    prediction: str = "eps"  # what the UNet outputs: "eps" (noise) or "v" (Salimans & Ho 2022)
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    seed: int = 0
    precision: str = "auto"
    save_every: int = 250
    preview_every: int = 500
    preview_steps: int = 15


def to_json(*configs) -> str:
    """A stable JSON text of dataclasses (nested ones included), for metadata and resume checks."""
    return json.dumps([dataclasses.asdict(c) | {"type": type(c).__name__} for c in configs],
                      sort_keys=True)


#: The shipped starter model: 64 x 64 scenes, an f = 4 autoencoder (16 x 16 x 4 latents; the
#: paper's LDM-4), a 3-level UNet with attention at 8 x 8, 4 x 4 and in the middle, a 4-layer
#: 128-wide text transformer. 64 channels at full resolution is the least GroupNorm(32) allows
#: for colour (two channels per group; see docs/training.md).
STARTER = Architecture(
    vae=VaeConfig(ch=64, ch_mult=(1, 1, 2), num_res_blocks=1, z_channels=4, embed_dim=4),
    unet=small_unet(64, (1, 2, 2), res_blocks=1, context_dim=128, attention=(False, True, True)),
    text=small_text_encoder(128, layers=4),
    image_size=64,
)

#: A few-MB model for tests and quick experiments: 16 x 16 images, f = 2.
TINY = Architecture(
    vae=VaeConfig(ch=32, ch_mult=(1, 2), num_res_blocks=1, z_channels=4, embed_dim=4),
    unet=small_unet(32, (1, 2), res_blocks=1, context_dim=32, head_channels=16),
    text=small_text_encoder(32, layers=1),
    image_size=16,
)

#: Architectures offered by the training nodes, by name.
ARCHITECTURES = {"starter": STARTER, "tiny": TINY}
