"""The diffusion engine: models of the latent diffusion paper in our own code.

Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models" (CVPR 2022): a KL
autoencoder and a UNet denoiser in its latent space conditioned by cross-attention
(``networks/``), loaded from the single-file checkpoints people download (``loading/``) and
assembled into handles (``model``, ``vae``). The rooms: ``networks/`` (the network definitions),
``loading/`` (model files in and out), ``lora/`` (LoRA as weight patches), ``imaging/`` (image,
mask and pixel algorithms, image files), ``text/``, ``vision/``, ``control/``, ``sampling/``,
``patches/``, ``memory/``, ``training/``, ``data/``; what concerns the engine as a whole stays
here. Nothing here imports ``nodes/``, ``graph/`` or ``api/``.
"""
