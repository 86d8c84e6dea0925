"""A test pack written the way Advanced-ControlNet and efficiency-nodes are: at import it subclasses
`comfy.controlnet.ControlNet`, imports ComfyUI's ControlNet nodes from `nodes`, and reads
`comfy.clip_vision`, `comfy.sdxl_clip` and `comfy.hooks` — features Weft does not have — and
upscale-model names. One node needs ControlNet; the other uses only what Weft has (`clip_preprocess`)."""

import comfy.clip_vision
import comfy.controlnet
import comfy.hooks
from comfy.cldm.cldm import ControlNet as ControlNetCLDM
from comfy.clip_vision import Output, clip_preprocess
from comfy.controlnet import ControlBase, ControlNet, StrengthType, T2IAdapter
from comfy.sdxl_clip import SDXLClipG, SDXLClipModel, SDXLRefinerClipModel
from comfy_extras.chainner_models import model_loading
from comfy_extras.nodes_upscale_model import ImageUpscaleWithModel
from nodes import MAX_RESOLUTION, ControlNetApply, ControlNetApplyAdvanced, ControlNetLoader


class ControlNetAdvanced(ControlNet):
    """Advanced-ControlNet's way: its own ControlNet with extra weights."""

    def __init__(self, control_model, strength_type=StrengthType.CONSTANT):
        super().__init__(control_model, strength_type=strength_type)
        self.weights = None


class ControlNetPlusPlus(ControlNetCLDM):
    pass


SDXL_ENCODERS = (SDXLClipModel, SDXLRefinerClipModel, SDXLClipG)
# What efficiency-nodes and TiledDiffusion hold at load for later isinstance checks and calls.
CONTROL_TYPES = (ControlBase, T2IAdapter, comfy.controlnet.ControlLora)
LOADED_AT_IMPORT = (ControlNetApply, ControlNetLoader, ImageUpscaleWithModel, model_loading.load_state_dict,
                    comfy.hooks.HookGroup, comfy.clip_vision.load)


class ApplyAdvancedControlNet:
    CATEGORY = "test/absent"
    FUNCTION = "apply"
    RETURN_TYPES = ("IMAGE",)
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",),
                             "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0})}}

    def apply(self, image, strength):
        control = ControlNetAdvanced(None)  # raises: ComfyUI's ControlNet classes are not in Weft
        control.set_cond_hint(image, strength)
        return (image,)


class ClipVisionPrep:
    CATEGORY = "test/absent"
    FUNCTION = "prepare"
    RETURN_TYPES = ("IMAGE",)
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",),
                             "size": ("INT", {"default": 32, "min": 8, "max": MAX_RESOLUTION})}}

    def prepare(self, image, size):
        pixels = clip_preprocess(image, size=size)
        out = Output()
        out["pixel_values"] = pixels
        return {"ui": {"shape": [list(out.pixel_values.shape)]}, "result": (out["pixel_values"].movedim(1, -1),)}


NODE_CLASS_MAPPINGS = {"ApplyAdvancedControlNet": ApplyAdvancedControlNet, "ClipVisionPrep": ClipVisionPrep}
