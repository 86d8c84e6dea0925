"""``comfy.ldm``: ComfyUI's model-code package paths, re-exporting Weft's own layers (see
``modules.attention``, ``modules.diffusionmodules``, ``modules.distributions``, ``models``)."""
