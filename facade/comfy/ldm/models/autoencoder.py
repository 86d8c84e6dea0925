"""``comfy.ldm.models.autoencoder``: ``AutoencoderKL`` is Weft's own (:mod:`ldm.networks.autoencoder`).

``vae.first_stage_model`` style walks find ComfyUI's tree (``encoder``/``decoder``/``quant_conv``/
``post_quant_conv``); ``encode`` returns Weft's ``(mean, logvar)`` rather than ComfyUI's
regularised latent, and the constructor takes Weft's ``VaeConfig``.
"""

from __future__ import annotations

from comfy.ldm.modules.distributions.distributions import DiagonalGaussianDistribution
from ldm.networks.autoencoder import AutoencoderKL

__all__ = ["AutoencoderKL", "DiagonalGaussianDistribution"]
