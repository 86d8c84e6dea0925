"""The diffusion engine: models of the latent diffusion paper in our own code.

Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models" (CVPR 2022): a KL
autoencoder (``vae``), a UNet denoiser in its latent space (``unet``) conditioned by
cross-attention, loaded from the single-file checkpoints people download (``checkpoint``,
``detect``, ``model``). Nothing here imports ``nodes/``, ``graph/`` or ``api/``.
"""
