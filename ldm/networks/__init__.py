"""The network definitions, attribute names = checkpoint keys.

``unet`` (the CompVis/SGM UNet) with ``unet_patches`` (ComfyUI's ``transformer_options`` patches
honoured while it walks its blocks) and ``adm`` (SDXL's label vector); ``autoencoder`` (the KL
autoencoder); ``taesd`` (the tiny preview decoder); ``ops`` (the layer operations every network is
built with: no random init, weights cast per call).
"""
