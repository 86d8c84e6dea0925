"""``comfy_extras.chainner_models.model_loading``: ``load_state_dict`` raises — upscale models
(ESRGAN and the other architectures ComfyUI reads through spandrel) are not in Weft yet."""

from __future__ import annotations

from _weft_absent import UPSCALE_MODELS, absent_function

load_state_dict = absent_function(UPSCALE_MODELS, __name__, "load_state_dict")
