"""Latent spaces of the supported VAEs: scale factor, preview colours, TAESD decoder name.

``LATENT`` values between nodes are raw VAE latents; a model's format scales them on the way into
sampling (``process_in``) and back (``process_out``). The scale factors are the published ones of
each release (SD 1.x/2.x config ``scale_factor: 0.18215``, SDXL ``0.13025``, x4 upscaler
``0.08333``); the RGB factors are the linear latent-to-RGB projections in common use for cheap
previews (as in ComfyUI's ``latent_formats.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LatentFormat:
    name: str
    channels: int
    scale_factor: float
    latent_rgb_factors: tuple[tuple[float, float, float], ...]  # [channels][R, G, B]
    latent_rgb_bias: tuple[float, float, float] | None = None
    taesd_decoder_name: str | None = None
    shift_factor: float = 0.0
    spatial_downscale_ratio: int = 8  # pixels per latent cell along each side

    def process_in(self, latent: torch.Tensor) -> torch.Tensor:
        """Raw VAE latent -> the model's latent space."""
        return (latent - self.shift_factor) * self.scale_factor

    def process_out(self, latent: torch.Tensor) -> torch.Tensor:
        """The model's latent space -> raw VAE latent."""
        return latent / self.scale_factor + self.shift_factor

    def latent_to_rgb(self, latent: torch.Tensor) -> torch.Tensor:
        """A cheap preview [B, h, w, 3] in 0..1 from a model-space latent [B, C, h, w]."""
        factors = torch.tensor(self.latent_rgb_factors, dtype=torch.float32, device=latent.device)
        rgb = torch.einsum("bchw,cr->bhwr", latent.float(), factors)
        if self.latent_rgb_bias is not None:
            rgb = rgb + torch.tensor(self.latent_rgb_bias, dtype=torch.float32, device=latent.device)
        return ((rgb + 1.0) / 2.0).clamp(0.0, 1.0)


SD15 = LatentFormat(
    name="SD15", channels=4, scale_factor=0.18215,
    latent_rgb_factors=((0.3512, 0.2297, 0.3227),
                        (0.3250, 0.4974, 0.2350),
                        (-0.2829, 0.1762, 0.2721),
                        (-0.2120, -0.2616, -0.7177)),
    taesd_decoder_name="taesd_decoder")

SDXL = LatentFormat(
    name="SDXL", channels=4, scale_factor=0.13025,
    latent_rgb_factors=((0.3651, 0.4232, 0.4341),
                        (-0.2533, -0.0042, 0.1068),
                        (0.1076, 0.1111, -0.0362),
                        (-0.3165, -0.2492, -0.2188)),
    latent_rgb_bias=(0.1084, -0.0175, -0.0011),
    taesd_decoder_name="taesdxl_decoder")

SD_X4 = LatentFormat(
    name="SD_X4", channels=4, scale_factor=0.08333,
    latent_rgb_factors=((-0.2340, -0.3863, -0.3257),
                        (0.0994, 0.0885, -0.0908),
                        (-0.2833, -0.2349, -0.3741),
                        (0.2523, -0.0055, -0.1651)))

#: The latent format of each model family.
FAMILY_LATENT_FORMATS = {
    "sd1": SD15, "sd1_inpaint": SD15,
    "sd2": SD15, "sd2_v": SD15, "sd2_inpaint": SD15, "sd2_unclip_l": SD15, "sd2_unclip_h": SD15,
    "sdxl": SDXL, "sdxl_refiner": SDXL,
    "sd_x4": SD_X4,
}


def neutral_rgb_factors(channels: int) -> tuple[tuple[float, float, float], ...]:
    """A preview projection that knows nothing of the autoencoder: channel ``c`` shows as colour
    ``c % 3``, the channels sharing a colour averaged (3 channels: the identity)."""
    shares = [sum(1 for c in range(channels) if c % 3 == colour) for colour in range(3)]
    return tuple(tuple(1.0 / shares[colour] if c % 3 == colour else 0.0 for colour in range(3))
                 for c in range(channels))


def ldm_latent_format(kind: str, channels: int, scale_factor: float, downscale_ratio: int = 8) -> LatentFormat:
    """The latent space of a CompVis LDM's own first stage (``kind`` "kl" / "vq"): its channel
    count, downscale factor and the checkpoint's ``scale_factor``; previews use
    :func:`neutral_rgb_factors` since no fitted projection exists for these autoencoders, and there
    is no TAESD for them."""
    return LatentFormat(name=f"LDM_{kind.upper()}{channels}F{downscale_ratio}", channels=channels,
                        scale_factor=scale_factor, latent_rgb_factors=neutral_rgb_factors(channels),
                        spatial_downscale_ratio=downscale_ratio)
