"""ControlNet and T2I-Adapter nodes: loaders, the apply nodes, the union type.

Names, inputs, outputs and categories are ComfyUI's (``nodes.py``, ``comfy_extras/
nodes_controlnet.py``; the latter has no source newer than the Oct 2025 copy, so its two nodes keep
that copy's ``conditioning/controlnet``). A ``CONTROL_NET`` is an :class:`ldm.control.apply.ControlModel`; the apply
nodes put an :class:`~ldm.control.apply.AppliedControl` into each conditioning entry's
``"control"``, chained onto the control the entry had, which sampling runs per model call.
"""

from __future__ import annotations

from ldm.control.apply import attach
from ldm.control.loading import load_control_model
from ldm.imaging.operations import resample
from nodes.services import model_names, services

#: ComfyUI's union ControlNet (ControlNet++) control types and their task indices.
UNION_CONTROLNET_TYPES = {
    "openpose": 0,
    "depth": 1,
    "hed/pidi/scribble/ted": 2,
    "canny/lineart/anime_lineart/mlsd": 3,
    "normal": 4,
    "segment": 5,
    "tile": 6,
    "repaint": 7,
}


def _strength():
    return ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01})


def _percent(default: float):
    return ("FLOAT", {"default": default, "min": 0.0, "max": 1.0, "step": 0.001})


class ControlNetLoader:
    CATEGORY = "model/loaders"
    FUNCTION = "load_controlnet"
    RETURN_TYPES = ("CONTROL_NET",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"control_net_name": (model_names("controlnet"),)}}

    def load_controlnet(self, control_net_name):
        return (load_control_model(services().folders.model_path("controlnet", control_net_name)),)


class DiffControlNetLoader:
    CATEGORY = "model/loaders"
    FUNCTION = "load_controlnet"
    RETURN_TYPES = ("CONTROL_NET",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "control_net_name": (model_names("controlnet"),)}}

    def load_controlnet(self, model, control_net_name):
        path = services().folders.model_path("controlnet", control_net_name)
        return (load_control_model(path, unet=model.unet),)


class ControlNetApply:
    CATEGORY = "model/conditioning/controlnet"
    FUNCTION = "apply_controlnet"
    RETURN_TYPES = ("CONDITIONING",)
    DEPRECATED = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",), "control_net": ("CONTROL_NET",),
                             "image": ("IMAGE",), "strength": _strength()}}

    def apply_controlnet(self, conditioning, control_net, image, strength):
        if strength == 0:
            return (conditioning,)
        out = []
        for cond, extras in conditioning:
            # one copy per entry, applied to the negative side too when sampling (ComfyUI's old node)
            control = attach(control_net, image, strength, previous=extras.get("control"))
            out.append([cond, dict(extras, control=control, control_apply_to_uncond=True)])
        return (out,)


class ControlNetApplyAdvanced:
    CATEGORY = "model/conditioning/controlnet"
    FUNCTION = "apply_controlnet"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                             "control_net": ("CONTROL_NET",), "image": ("IMAGE",), "strength": _strength(),
                             "start_percent": _percent(0.0), "end_percent": _percent(1.0)},
                "optional": {"vae": ("VAE",)}}

    def apply_controlnet(self, positive, negative, control_net, image, strength, start_percent, end_percent,
                         vae=None, extra_concat=()):
        if strength == 0:
            return (positive, negative)
        # One applied control per previous control, shared by every entry (either side) that had
        # it: the cond and uncond halves then batch into one model call with one ControlNet pass.
        by_previous: dict[int, object] = {}
        out = []
        for conditioning in (positive, negative):
            entries = []
            for cond, extras in conditioning:
                previous = extras.get("control")
                control = by_previous.get(id(previous))
                if control is None:
                    control = attach(control_net, image, strength, (start_percent, end_percent), previous=previous,
                                     vae=vae, extra_concat=tuple(extra_concat))
                    by_previous[id(previous)] = control
                entries.append([cond, dict(extras, control=control, control_apply_to_uncond=False)])
            out.append(entries)
        return (out[0], out[1])


class SetUnionControlNetType:
    CATEGORY = "conditioning/controlnet"
    FUNCTION = "set_controlnet_type"
    RETURN_TYPES = ("CONTROL_NET",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"control_net": ("CONTROL_NET",),
                             "type": (["auto"] + list(UNION_CONTROLNET_TYPES),)}}

    def set_controlnet_type(self, control_net, type):  # noqa: A002 - ComfyUI's input name
        number = UNION_CONTROLNET_TYPES.get(type, -1)
        return (control_net.with_extra_arg("control_type", [number] if number >= 0 else []),)


class ControlNetInpaintingAliMamaApply(ControlNetApplyAdvanced):
    CATEGORY = "conditioning/controlnet"  # nodes_controlnet.py: no source newer than the Oct 2025 copy
    FUNCTION = "apply_inpaint_controlnet"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                             "control_net": ("CONTROL_NET",), "vae": ("VAE",), "image": ("IMAGE",),
                             "mask": ("MASK",), "strength": _strength(),
                             "start_percent": _percent(0.0), "end_percent": _percent(1.0)}}

    def apply_inpaint_controlnet(self, positive, negative, control_net, vae, image, mask, strength, start_percent,
                                 end_percent):
        extra_concat = ()
        if control_net.concat_mask:
            # The model sees the kept region (1 - mask) as an extra channel and the masked pixels blacked out.
            keep = 1.0 - mask.reshape((-1, 1) + tuple(mask.shape[-2:])).float()
            keep_at_image = resample(keep, image.shape[2], image.shape[1], "bilinear", "center").round()
            image = image * keep_at_image.movedim(1, -1)
            extra_concat = (keep,)
        return self.apply_controlnet(positive, negative, control_net, image, strength, start_percent, end_percent,
                                     vae=vae, extra_concat=extra_concat)


NODE_CLASS_MAPPINGS = {
    "ControlNetLoader": ControlNetLoader,
    "DiffControlNetLoader": DiffControlNetLoader,
    "ControlNetApply": ControlNetApply,
    "ControlNetApplyAdvanced": ControlNetApplyAdvanced,
    "SetUnionControlNetType": SetUnionControlNetType,
    "ControlNetInpaintingAliMamaApply": ControlNetInpaintingAliMamaApply,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "ControlNetLoader": "Load ControlNet Model",
    "DiffControlNetLoader": "Load ControlNet Model (diff)",
    "ControlNetApply": "Apply ControlNet (DEPRECATED)",
    "ControlNetApplyAdvanced": "Apply ControlNet",
}
