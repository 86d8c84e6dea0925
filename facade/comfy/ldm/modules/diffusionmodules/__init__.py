"""``comfy.ldm.modules.diffusionmodules``: UNet (``openaimodel``), autoencoder (``model``), helpers (``util``)."""
