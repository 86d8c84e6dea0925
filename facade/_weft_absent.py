"""ComfyUI features Weft does not have: names that exist so packs import, and fail clearly when used.

A pack often imports, at module level, the classes and nodes of a feature that only one of its
nodes uses (``comfy.controlnet.ControlNet``, ``from nodes import ControlNetApplyAdvanced``). If the
import failed, every node of the pack would be lost. So the facade provides such names, and using
one raises :class:`NotInWeftError` (a ``NotImplementedError``) naming the missing feature and the
ComfyUI name that was used. Never does a placeholder pretend to work.

Classes are real classes: packs subclass them and test ``isinstance`` with them, which is False
for every Weft object (no Weft object is an instance of a placeholder). Constructing one raises.
Nodes are real V1-shaped classes (``INPUT_TYPES``, ``RETURN_TYPES``, ``FUNCTION``); calling their
function raises, so a node that needs one fails as that node's execution error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable


class NotInWeftError(NotImplementedError):
    """A ComfyUI feature a node pack used is not in Weft."""


@dataclass(frozen=True)
class Feature:
    """A ComfyUI feature Weft lacks, named as a plural noun phrase ("ControlNet models")."""

    what: str
    planned: bool = True  # False: outside Weft's scope (video models, GLIGEN, hooks …)

    def error(self, comfy_name: str) -> NotInWeftError:
        """The error for using ``comfy_name`` (ComfyUI's qualified name of what was used)."""
        status = "not in Weft yet" if self.planned else "not in Weft"
        return NotInWeftError(f"{self.what} are {status} (ComfyUI's {comfy_name}); "
                              f"the node that needs them cannot run")


CONTROLNET = Feature(
    "ComfyUI's ControlNet classes (Weft's CONTROL_NET is its own object: comfy.controlnet.load_controlnet "
    "loads one, the ControlNetApply nodes apply it)", planned=False)
CLIP_VISION = Feature(
    "ComfyUI's ClipVisionModel class (Weft's CLIP_VISION is its own object: comfy.clip_vision.load loads one)",
    planned=False)
GLIGEN = Feature("ComfyUI's GLIGEN classes (Weft's GLIGEN is its own object: the GLIGENLoader node loads one)",
                 planned=False)
UNCLIP = Feature("ComfyUI's unCLIP classes and SDXL unCLIP (Weft's SD2 unCLIP checkpoints load through "
                 "unCLIPCheckpointLoader and augment image embeddings themselves)", planned=False)
VIDEO = Feature("video and 3D models (SVD, SV3D, LTX-Video, Wan …)", planned=False)
OTHER_FAMILIES = Feature("model families other than SD1.x, SD2.x and SDXL", planned=False)
TEXT_ENCODER_CLASSES = Feature(
    "ComfyUI's text-encoder classes (Weft's CLIP is its own object: use clip.tokenize and "
    "clip.encode_from_tokens)", planned=False)
MODEL_SAMPLING_CLASSES = Feature(
    "ComfyUI's model-sampling classes (Weft's ModelSamplingDiscrete node patches the sampling)",
    planned=False)
COMFY_NODE = Feature("these ComfyUI nodes")


def absent_function(feature: Feature, module: str, name: str) -> Callable[..., Any]:
    """A function ``module.name`` that raises the feature's error when called."""

    def absent(*args: Any, **kwargs: Any) -> Any:
        raise feature.error(f"{module}.{name}")

    absent.__name__ = absent.__qualname__ = name
    absent.__module__ = module
    absent.__weft_absent__ = feature
    absent.__doc__ = f"Not in Weft: {feature.what}."
    return absent


def absent_class(feature: Feature, module: str, name: str, bases: tuple[type, ...] = (object,),
                 namespace: dict | None = None) -> type:
    """A class ``module.name`` (subclassable; matches no Weft object) whose construction raises."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise feature.error(f"{module}.{name}")

    body = {"__init__": __init__, "__module__": module, "__doc__": f"Not in Weft: {feature.what}.",
            "__weft_absent__": feature, **(namespace or {})}
    return type(name, bases, body)


def absent_node(feature: Feature, module: str, node_id: str, methods: Iterable[str],
                return_types: tuple[str, ...] = (),
                class_name: str | None = None) -> type:
    """A V1 node class for ComfyUI's node ``node_id``: ``FUNCTION`` is the first of ``methods``;
    calling any of them raises the feature's error naming the node."""
    methods = tuple(methods)
    where = f"{node_id} node in {module}"

    def run(*args: Any, **kwargs: Any) -> Any:
        raise feature.error(where)

    def input_types(cls) -> dict:
        return {"required": {}}

    body: dict[str, Any] = {
        "__module__": module, "__doc__": f"ComfyUI's {node_id} node: not in Weft ({feature.what}).",
        "__weft_absent__": feature, "INPUT_TYPES": classmethod(input_types),
        "RETURN_TYPES": tuple(return_types), "FUNCTION": methods[0], "CATEGORY": "not in Weft",
        "OUTPUT_NODE": False}
    body.update({method: staticmethod(run) for method in methods})
    return type(class_name or node_id, (object,), body)
