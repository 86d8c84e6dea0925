"""``comfy_extras.chainner_models.model_loading``: the upscale-model loader of ComfyUI before
spandrel; ``load_state_dict(state_dict)`` is now spandrel's, as Weft's ``UpscaleModelLoader`` uses."""

from __future__ import annotations


def load_state_dict(state_dict):
    """The upscale model (a spandrel ``ImageModelDescriptor``: callable on ``[B, C, H, W]``, with
    ``.scale``) that ``state_dict`` holds, in eval mode."""
    from spandrel import ModelLoader

    return ModelLoader().load_from_state_dict(state_dict).eval()
