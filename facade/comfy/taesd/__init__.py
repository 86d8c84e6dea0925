"""``comfy.taesd``: the tiny autoencoder's building blocks, over Weft's ``ldm.networks.taesd``."""

from _weft_lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
