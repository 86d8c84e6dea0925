"""``comfy.ldm.modules.distributions``: the autoencoder's posterior."""

from _weft_lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
