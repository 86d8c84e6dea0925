"""``comfy.ldm.modules``: the layers of the latent diffusion UNet and autoencoder."""

from _weft_lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
