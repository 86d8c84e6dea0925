"""ComfyUI's V3 socket types: ``io.Int``, ``io.Image``, ``io.Custom("MY_TYPE")`` and the rest.

A socket type is a class carrying ``io_type`` (the protocol string, ``"IMAGE"``), a ``Type`` hint,
and nested ``Input`` / ``Output`` classes that a schema instantiates: ``io.Int.Input("seed",
min=0)``, ``io.Image.Output()``. An input renders as ComfyUI's V1 spec ``(io_type, options)``
where ``options`` is :meth:`Input.as_dict` without the ``optional`` key; options left at ``None``
are omitted, exactly as ComfyUI prunes them, so ``/object_info`` shows the same keys.

Keyword names and their order follow ComfyUI's ``comfy_api/latest/_io.py`` (v0.3.64, plus the
later ``extra_dict`` / ``raw_link`` / ``advanced`` keywords, so packs written for newer releases
construct without errors).
"""

from __future__ import annotations

import copy
from enum import Enum
from typing import Any, Callable

import torch


def prune_dict(values: dict) -> dict:
    """``values`` without the entries whose value is None."""
    return {key: value for key, value in values.items() if value is not None}


class FolderType(str, Enum):
    input = "input"
    output = "output"
    temp = "temp"


class UploadType(str, Enum):
    image = "image_upload"
    audio = "audio_upload"
    video = "video_upload"
    model = "file_upload"


class NumberDisplay(str, Enum):
    number = "number"
    slider = "slider"
    gradient_slider = "gradientslider"


class ControlAfterGenerate(str, Enum):
    fixed = "fixed"
    increment = "increment"
    decrement = "decrement"
    randomize = "randomize"


class RemoteOptions:
    """A combo whose choices the editor fetches from ``route``."""

    def __init__(self, route: str, refresh_button: bool, control_after_refresh: str = "first",
                 timeout: int | None = None, max_retries: int | None = None, refresh: int | None = None):
        self.route = route
        self.refresh_button = refresh_button
        self.control_after_refresh = control_after_refresh
        self.timeout = timeout
        self.max_retries = max_retries
        self.refresh = refresh

    def as_dict(self) -> dict:
        return prune_dict({"route": self.route, "refresh_button": self.refresh_button,
                           "control_after_refresh": self.control_after_refresh, "timeout": self.timeout,
                           "max_retries": self.max_retries, "refresh": self.refresh})


# -- inputs and outputs --------------------------------------------------------------------------------

class _Slot:
    """An input or output of some socket type; ``Parent`` is that type (set by :func:`comfytype`)."""

    Parent: Any = None

    @property
    def io_type(self):
        return self.Parent.io_type

    @property
    def Type(self):
        return self.Parent.Type

    def validate(self) -> None:
        """Checked by ``Schema.validate``; plain slots have nothing to check."""


class Input(_Slot):
    def __init__(self, id: str, display_name: str | None = None, optional: bool = False, tooltip: str | None = None,
                 lazy: bool | None = None, extra_dict: dict | None = None, raw_link: bool | None = None,
                 advanced: bool | None = None):
        self.id = id
        self.display_name = display_name
        self.optional = optional
        self.tooltip = tooltip
        self.lazy = lazy
        self.extra_dict = extra_dict if extra_dict is not None else {}
        self.raw_link = raw_link
        self.advanced = advanced

    def as_dict(self) -> dict:
        return prune_dict({"display_name": self.display_name, "optional": self.optional, "tooltip": self.tooltip,
                           "lazy": self.lazy, "rawLink": self.raw_link, "advanced": self.advanced}
                          ) | prune_dict(self.extra_dict)

    def get_io_type(self):
        return self.io_type

    def get_all(self) -> list[Input]:
        return [self]


class WidgetInput(Input):
    """An input the editor can show as a widget (a number box, a text field, a dropdown)."""

    def __init__(self, id: str, display_name: str | None = None, optional: bool = False, tooltip: str | None = None,
                 lazy: bool | None = None, default: Any = None, socketless: bool | None = None,
                 widget_type: str | None = None, force_input: bool | None = None, extra_dict: dict | None = None,
                 raw_link: bool | None = None, advanced: bool | None = None):
        super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced)
        self.default = default
        self.socketless = socketless
        self.widget_type = widget_type
        self.force_input = force_input

    def as_dict(self) -> dict:
        return super().as_dict() | prune_dict({"default": self.default, "socketless": self.socketless,
                                               "widgetType": self.widget_type, "forceInput": self.force_input})

    def get_io_type(self):
        return self.widget_type if self.widget_type is not None else super().get_io_type()


class Output(_Slot):
    def __init__(self, id: str | None = None, display_name: str | None = None, tooltip: str | None = None,
                 is_output_list: bool = False):
        self.id = id
        # A named output shows its id when no display name is given (ComfyUI since late 2025).
        self.display_name = display_name if display_name else id
        self.tooltip = tooltip
        self.is_output_list = is_output_list

    def as_dict(self) -> dict:
        return prune_dict({"display_name": self.display_name, "tooltip": self.tooltip,
                           "is_output_list": self.is_output_list})

    def get_io_type(self):
        return self.io_type


# -- socket types ------------------------------------------------------------------------------------

class _ComfyType:
    Type: Any = Any
    io_type: Any = None


class ComfyTypeI(_ComfyType):
    """A socket type with an input only."""

    class Input(Input):
        pass


class ComfyTypeIO(ComfyTypeI):
    """A socket type with an input and an output."""

    class Output(Output):
        pass


def comfytype(io_type: str, **kwargs) -> Callable[[type], type]:
    """Class decorator: make ``cls`` the socket type ``io_type``.

    Its ``Input`` / ``Output`` classes learn their parent type; one inherited from a base type is
    first subclassed, so ``Image.Input`` and ``Mask.Input`` are different classes.
    """

    def decorate(cls: type) -> type:
        if not issubclass(cls, _ComfyType):
            cls = type(cls.__name__, (cls, ComfyTypeIO),
                       {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__})
        cls.io_type = io_type
        for slot in ("Input", "Output"):
            nested = getattr(cls, slot, None)
            if nested is None:
                continue
            if slot not in cls.__dict__:
                nested = type(nested.__name__, (nested,),
                              {"__module__": cls.__module__, "__qualname__": f"{cls.__qualname__}.{slot}"})
                setattr(cls, slot, nested)
            nested.Parent = cls
        return cls

    return decorate


def Custom(io_type: str) -> type[ComfyTypeIO]:
    """A socket type for a pack's own ``io_type`` string."""

    @comfytype(io_type=io_type)
    class CustomComfyType(ComfyTypeIO):
        pass

    return CustomComfyType


def _socket(name: str, io_type: str, type_hint: Any = Any) -> type[ComfyTypeIO]:
    """A plain socket type (no widget): ``Image = _socket("Image", "IMAGE", torch.Tensor)``."""
    cls = type(name, (ComfyTypeIO,), {"Type": type_hint, "__module__": __name__, "__qualname__": name})
    return comfytype(io_type)(cls)


@comfytype(io_type="BOOLEAN")
class Boolean(ComfyTypeIO):
    Type = bool

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: bool | None = None,
                     label_on: str | None = None, label_off: str | None = None, socketless: bool | None = None,
                     force_input: bool | None = None, extra_dict: dict | None = None, raw_link: bool | None = None,
                     advanced: bool | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, raw_link, advanced)
            self.label_on = label_on
            self.label_off = label_off

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({"label_on": self.label_on, "label_off": self.label_off})


@comfytype(io_type="INT")
class Int(ComfyTypeIO):
    Type = int

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: int | None = None,
                     min: int | None = None, max: int | None = None, step: int | None = None,
                     control_after_generate: bool | ControlAfterGenerate | None = None,
                     display_mode: NumberDisplay | None = None, socketless: bool | None = None,
                     force_input: bool | None = None, extra_dict: dict | None = None, raw_link: bool | None = None,
                     advanced: bool | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, raw_link, advanced)
            self.min, self.max, self.step = min, max, step
            self.control_after_generate = control_after_generate
            self.display_mode = display_mode

        def as_dict(self) -> dict:
            display = self.display_mode.value if isinstance(self.display_mode, Enum) else self.display_mode
            return super().as_dict() | prune_dict({"min": self.min, "max": self.max, "step": self.step,
                                                   "control_after_generate": self.control_after_generate,
                                                   "display": display})


@comfytype(io_type="FLOAT")
class Float(ComfyTypeIO):
    Type = float

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: float | None = None,
                     min: float | None = None, max: float | None = None, step: float | None = None,
                     round: float | None = None, display_mode: NumberDisplay | None = None,
                     gradient_stops: list | None = None, socketless: bool | None = None,
                     force_input: bool | None = None, extra_dict: dict | None = None, raw_link: bool | None = None,
                     advanced: bool | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, raw_link, advanced)
            self.min, self.max, self.step, self.round = min, max, step, round
            self.display_mode = display_mode
            self.gradient_stops = gradient_stops

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({"min": self.min, "max": self.max, "step": self.step,
                                                   "round": self.round, "display": self.display_mode,
                                                   "gradient_stops": self.gradient_stops})


@comfytype(io_type="STRING")
class String(ComfyTypeIO):
    Type = str

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, multiline: bool = False,
                     placeholder: str | None = None, default: str | None = None,
                     dynamic_prompts: bool | None = None, socketless: bool | None = None,
                     force_input: bool | None = None, extra_dict: dict | None = None, raw_link: bool | None = None,
                     advanced: bool | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, raw_link, advanced)
            self.multiline = multiline
            self.placeholder = placeholder
            self.dynamic_prompts = dynamic_prompts

        def as_dict(self) -> dict:
            # `multiline` is False rather than None by default, so it always shows.
            return super().as_dict() | prune_dict({"multiline": self.multiline, "placeholder": self.placeholder,
                                                   "dynamicPrompts": self.dynamic_prompts})


@comfytype(io_type="COMBO")
class Combo(ComfyTypeIO):
    Type = str

    class Input(WidgetInput):
        def __init__(self, id: str, options: list | type[Enum] | None = None, display_name: str | None = None,
                     optional: bool = False, tooltip: str | None = None, lazy: bool | None = None,
                     default: Any = None, control_after_generate: bool | ControlAfterGenerate | None = None,
                     upload: UploadType | None = None, image_folder: FolderType | None = None,
                     remote: RemoteOptions | None = None, remote_combo: Any = None, socketless: bool | None = None,
                     extra_dict: dict | None = None, raw_link: bool | None = None, advanced: bool | None = None):
            if isinstance(options, type) and issubclass(options, Enum):
                options = [member.value for member in options]
            if isinstance(default, Enum):
                default = default.value
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, None,
                             extra_dict, raw_link, advanced)
            self.multiselect = False
            self.options = options
            self.control_after_generate = control_after_generate
            self.upload = upload
            self.image_folder = image_folder
            self.remote = remote
            self.remote_combo = remote_combo

        def as_dict(self) -> dict:
            upload = {UploadType(self.upload).value: True} if self.upload is not None else {}
            return super().as_dict() | prune_dict({
                "multiselect": self.multiselect,
                "options": self.options,
                "control_after_generate": self.control_after_generate,
                **upload,
                "image_folder": FolderType(self.image_folder).value if self.image_folder else None,
                "remote": self.remote.as_dict() if self.remote else None,
                "remote_combo": self.remote_combo.as_dict() if self.remote_combo else None,
            })

    class Output(Output):
        def __init__(self, id: str | None = None, display_name: str | None = None, options: list | None = None,
                     tooltip: str | None = None, is_output_list: bool = False):
            super().__init__(id, display_name, tooltip, is_output_list)
            self.options = options if options is not None else []

        @property
        def io_type(self):
            # v0.3.64: a combo output's type is its list of choices, so it links to matching combos.
            return self.options


@comfytype(io_type="COMBO")
class MultiCombo(ComfyTypeI):
    """A combo where several choices can be picked; its value is a list."""

    Type = list

    class Input(Combo.Input):
        def __init__(self, id: str, options: list, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: list | None = None,
                     placeholder: str | None = None, chip: bool | None = None,
                     control_after_generate: bool | ControlAfterGenerate | None = None,
                     socketless: bool | None = None, extra_dict: dict | None = None, raw_link: bool | None = None,
                     advanced: bool | None = None):
            super().__init__(id, options, display_name, optional, tooltip, lazy, default, control_after_generate,
                             socketless=socketless, extra_dict=extra_dict, raw_link=raw_link, advanced=advanced)
            self.multiselect = True
            self.placeholder = placeholder
            self.chip = chip

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({"multi_select": self.multiselect,
                                                   "placeholder": self.placeholder, "chip": self.chip})


@comfytype(io_type="WEBCAM")
class Webcam(ComfyTypeIO):
    Type = str

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: str | None = None,
                     socketless: bool | None = None, extra_dict: dict | None = None, raw_link: bool | None = None,
                     advanced: bool | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, None,
                             extra_dict, raw_link, advanced)


@comfytype(io_type="COMFY_MULTITYPED_V3")
class MultiType:
    """An input that accepts any of several socket types (its spec type is their comma union)."""

    Type = Any

    class Input(Input):
        def __init__(self, id: str | Input, types: list, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, extra_dict: dict | None = None,
                     raw_link: bool | None = None, advanced: bool | None = None):
            # Given an Input instead of a name, that input supplies the widget and fills unset fields.
            self.input_override = None
            if isinstance(id, Input):
                template = id
                self.input_override = copy.copy(template)
                optional = True if template.optional is True else optional
                tooltip = template.tooltip if template.tooltip is not None else tooltip
                display_name = template.display_name if template.display_name is not None else display_name
                lazy = template.lazy if template.lazy is not None else lazy
                id = template.id
                if isinstance(self.input_override, WidgetInput):
                    self.input_override.widget_type = self.input_override.get_io_type()
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced)
            self._io_types = list(types)

        @property
        def io_types(self) -> list:
            return [t if isinstance(t, type) else type(t) for t in self._io_types]

        def get_io_type(self) -> str:
            names = [t.io_type for t in self.io_types]
            if self.input_override is not None:
                names.insert(0, self.input_override.get_io_type())
            return ",".join(dict.fromkeys(names))  # unique, in order

        def as_dict(self) -> dict:
            own = super().as_dict()
            return self.input_override.as_dict() | own if self.input_override is not None else own


# Plain socket types: one class per protocol name (ComfyUI's list, v0.3.64 and a few later ones).
Image = _socket("Image", "IMAGE", torch.Tensor)
Mask = _socket("Mask", "MASK", torch.Tensor)
Latent = _socket("Latent", "LATENT", dict)
Conditioning = _socket("Conditioning", "CONDITIONING", list)
Sampler = _socket("Sampler", "SAMPLER")
Sigmas = _socket("Sigmas", "SIGMAS", torch.Tensor)
Noise = _socket("Noise", "NOISE")
Guider = _socket("Guider", "GUIDER")
Clip = _socket("Clip", "CLIP")
ControlNet = _socket("ControlNet", "CONTROL_NET")
Vae = _socket("Vae", "VAE")
Model = _socket("Model", "MODEL")
ModelPatch = _socket("ModelPatch", "MODEL_PATCH")
MODEL_PATCH = ModelPatch  # the v0.3.64 spelling
ClipVision = _socket("ClipVision", "CLIP_VISION")
ClipVisionOutput = _socket("ClipVisionOutput", "CLIP_VISION_OUTPUT")
StyleModel = _socket("StyleModel", "STYLE_MODEL")
Gligen = _socket("Gligen", "GLIGEN")
UpscaleModel = _socket("UpscaleModel", "UPSCALE_MODEL")
LatentUpscaleModel = _socket("LatentUpscaleModel", "LATENT_UPSCALE_MODEL")
Audio = _socket("Audio", "AUDIO", dict)
AudioEncoder = _socket("AudioEncoder", "AUDIO_ENCODER")
AudioEncoderOutput = _socket("AudioEncoderOutput", "AUDIO_ENCODER_OUTPUT")
Video = _socket("Video", "VIDEO")
SVG = _socket("SVG", "SVG")
LoraModel = _socket("LoraModel", "LORA_MODEL", dict)
LossMap = _socket("LossMap", "LOSS_MAP", dict)
Voxel = _socket("Voxel", "VOXEL")
Mesh = _socket("Mesh", "MESH")
Hooks = _socket("Hooks", "HOOKS")
HookKeyframes = _socket("HookKeyframes", "HOOK_KEYFRAMES")
TimestepsRange = _socket("TimestepsRange", "TIMESTEPS_RANGE", tuple)
LatentOperation = _socket("LatentOperation", "LATENT_OPERATION", Callable)
FlowControl = _socket("FlowControl", "FLOW_CONTROL", tuple)
Accumulation = _socket("Accumulation", "ACCUMULATION", dict)
Load3DCamera = _socket("Load3DCamera", "LOAD3D_CAMERA", dict)
Load3D = _socket("Load3D", "LOAD_3D", dict)
Load3DAnimation = _socket("Load3DAnimation", "LOAD_3D_ANIMATION", dict)
Photomaker = _socket("Photomaker", "PHOTOMAKER")
Point = _socket("Point", "POINT")
FaceAnalysis = _socket("FaceAnalysis", "FACE_ANALYSIS")
BBOX = _socket("BBOX", "BBOX")
SEGS = _socket("SEGS", "SEGS")
WanCameraEmbedding = _socket("WanCameraEmbedding", "WAN_CAMERA_EMBEDDING", torch.Tensor)
Tracks = _socket("Tracks", "TRACKS", dict)
Dict = _socket("Dict", "DICT", dict)
Array = _socket("Array", "ARRAY", list)
AnyType = _socket("AnyType", "*")


# -- dynamic inputs (MatchType, Autogrow, DynamicCombo) -------------------------------------------------
#
# ComfyUI renders these in /object_info as one entry each (the editor grows them); a prompt names
# their parts with dotted keys ("method.strength", "values.input0"), and ``execute`` receives each
# one as a dict (see ``_dynamic.py``, which also derives Weft's flat V1 view).

class _WildcardName(str):
    """A socket type name that links with every type, as ComfyUI's validator lets a MatchType
    socket do (the editor resolves its real type): ``!=`` is False against anything, the rule
    Weft's type check (graph/types.py) and ComfyUI's share for "any" types."""

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = str.__hash__


def create_input_dict_v1(inputs: list) -> dict:
    """``{"required": {id: (io_type, options)}, "optional": …}`` for a list of inputs, as ComfyUI
    nests them inside a dynamic input's options."""
    sections: dict = {"required": {}}
    for item in inputs:
        options = item.as_dict()
        options.pop("optional", None)
        sections.setdefault("optional" if item.optional else "required", {})[item.id] = (item.get_io_type(), options)
    return sections


class DynamicInput(Input):
    """Base of the inputs whose parts the prompt names with dotted keys."""


class DynamicOutput(Output):
    """Base of dynamic outputs (none are defined yet)."""


def _check_comfy_type(value: Any) -> None:
    ok = issubclass(value, _ComfyType) if isinstance(value, type) else isinstance(value, _ComfyType)
    if not ok:
        name = value.__name__ if isinstance(value, type) else type(value).__name__
        raise ValueError(f"Allowed types must be a ComfyType or a list of ComfyTypes, got {name}")


@comfytype(io_type=_WildcardName("COMFY_MATCHTYPE_V3"))
class MatchType(ComfyTypeIO):
    """Inputs and outputs sharing a template take one type: whatever is connected (of the allowed types)."""

    class Template:
        def __init__(self, template_id: str, allowed_types: Any = None):
            if allowed_types is None:
                allowed_types = [AnyType]
            elif isinstance(allowed_types, type) or not isinstance(allowed_types, (list, tuple, set)):
                allowed_types = [allowed_types]
            for allowed in allowed_types:
                _check_comfy_type(allowed)
            self.template_id = template_id
            self.allowed_types = list(allowed_types)

        def as_dict(self) -> dict:
            return {"template_id": self.template_id,
                    "allowed_types": ",".join(t.io_type for t in self.allowed_types)}

    class Input(Input):
        def __init__(self, id: str, template: MatchType.Template, display_name: str | None = None,
                     optional: bool = False, tooltip: str | None = None, lazy: bool | None = None,
                     extra_dict: dict | None = None, raw_link: bool | None = None, advanced: bool | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced)
            self.template = template

        def as_dict(self) -> dict:
            return super().as_dict() | {"template": self.template.as_dict()}

    class Output(Output):
        def __init__(self, template: MatchType.Template, id: str | None = None, display_name: str | None = None,
                     tooltip: str | None = None, is_output_list: bool = False):
            if not id and not display_name:
                display_name = "MATCHTYPE"
            super().__init__(id, display_name, tooltip, is_output_list)
            self.template = template

        def as_dict(self) -> dict:
            return super().as_dict() | {"template": self.template.as_dict()}


@comfytype(io_type="COMFY_AUTOGROW_V3")
class Autogrow(ComfyTypeI):
    """A list of inputs made from one template input, growing as the user connects them."""

    Type = dict
    _MaxNames = 100

    class _AutogrowTemplate:
        def __init__(self, input: Input):
            if isinstance(input, DynamicInput):
                raise AssertionError("an Autogrow template cannot be a dynamic input")
            self.input = copy.copy(input)
            if isinstance(self.input, WidgetInput):
                self.input.force_input = True
            self.names: list[str] = []
            self.cached_inputs: dict = {}

        def _make_inputs(self) -> None:
            for name in self.names:
                grown = copy.copy(self.input)
                grown.id = name
                self.cached_inputs[name] = grown

        def get_all(self) -> list[Input]:
            return list(self.cached_inputs.values())

        def as_dict(self) -> dict:
            return {"input": create_input_dict_v1([self.input])}

        def validate(self) -> None:
            self.input.validate()

    class TemplatePrefix(_AutogrowTemplate):
        """Inputs named ``prefix0``, ``prefix1``, … up to ``max``."""

        def __init__(self, input: Input, prefix: str, min: int = 1, max: int = 10):
            super().__init__(input)
            if min < 0 or max < 1 or max > Autogrow._MaxNames:
                raise AssertionError(f"Autogrow needs 0 <= min, 1 <= max <= {Autogrow._MaxNames}")
            self.prefix, self.min, self.max = prefix, min, max
            self.names = [f"{prefix}{index}" for index in range(max)]
            self._make_inputs()

        def as_dict(self) -> dict:
            return super().as_dict() | {"prefix": self.prefix, "min": self.min, "max": self.max}

    class TemplateNames(_AutogrowTemplate):
        """Inputs with the given names, in order."""

        def __init__(self, input: Input, names: list[str], min: int = 1):
            super().__init__(input)
            if min < 0:
                raise AssertionError("Autogrow needs 0 <= min")
            self.names = list(names)[:Autogrow._MaxNames]
            self.min = min
            self._make_inputs()

        def as_dict(self) -> dict:
            return super().as_dict() | {"names": self.names, "min": self.min}

    class Input(DynamicInput):
        def __init__(self, id: str, template: Autogrow.TemplatePrefix | Autogrow.TemplateNames,
                     display_name: str | None = None, optional: bool = False, tooltip: str | None = None,
                     lazy: bool | None = None, extra_dict: dict | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict)
            self.template = template

        def as_dict(self) -> dict:
            return super().as_dict() | {"template": self.template.as_dict()}

        def get_all(self) -> list[Input]:
            return [self, *self.template.get_all()]

        def validate(self) -> None:
            self.template.validate()


@comfytype(io_type="COMFY_DYNAMICCOMBO_V3")
class DynamicCombo(ComfyTypeI):
    """A combo whose every choice brings inputs of its own."""

    Type = dict

    class Option:
        def __init__(self, key: str, inputs: list[Input]):
            self.key = key
            self.inputs = list(inputs or [])

        def as_dict(self) -> dict:
            return {"key": self.key, "inputs": create_input_dict_v1(self.inputs)}

    class Input(DynamicInput):
        def __init__(self, id: str, options: list[DynamicCombo.Option], display_name: str | None = None,
                     optional: bool = False, tooltip: str | None = None, lazy: bool | None = None,
                     extra_dict: dict | None = None):
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict)
            self.options = list(options)

        def get_all(self) -> list[Input]:
            return [self, *(item for option in self.options for item in option.inputs)]

        def as_dict(self) -> dict:
            return super().as_dict() | {"options": [option.as_dict() for option in self.options]}

        def validate(self) -> None:
            for option in self.options:
                for item in option.inputs:
                    item.validate()


@comfytype(io_type="BOUNDING_BOX")
class BoundingBox(ComfyTypeIO):
    """A box ``{"x", "y", "width", "height"}`` in pixels (a widget unless ``force_input``)."""

    Type = dict

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, socketless: bool = True, default: dict | None = None,
                     component: str | None = None, force_input: bool | None = None):
            super().__init__(id, display_name, optional, tooltip, None, default, socketless)
            if default is None:
                self.default = {"x": 0, "y": 0, "width": 512, "height": 512}
            self.component = component
            self.force_input = force_input

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({"component": self.component})
