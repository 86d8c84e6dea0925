"""``comfy.ldm.modules.diffusionmodules``: UNet (``openaimodel``), autoencoder (``model``), helpers (``util``)."""

from _weft_lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
