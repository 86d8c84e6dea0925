"""``comfy.ldm.modules``: the layers of the latent diffusion UNet and autoencoder."""
