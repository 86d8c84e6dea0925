"""UNet-structural techniques a patch node attaches to a MODEL, one module each.

Each module builds the functions ComfyUI's patch points call (``ldm.networks.unet_patches``: attention,
block and wrapper patches; ``ldm.sampling.hooks``: cfg hooks); the nodes in
``nodes/attention_patches.py`` put them on a MODEL clone. Nothing here knows of nodes.
"""
