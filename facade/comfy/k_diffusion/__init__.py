"""``comfy.k_diffusion``: Weft's k-diffusion-style samplers under ComfyUI's module path."""
