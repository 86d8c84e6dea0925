"""``comfy.ldm.models``: whole models (``autoencoder``)."""

from _weft_lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
