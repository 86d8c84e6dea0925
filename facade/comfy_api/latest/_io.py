"""``comfy_api.latest.io`` (also ``IO``): the names V3 node packs use, under ComfyUI's module path.

The implementation is split by topic: socket types in ``_types``, the schema and node output in
``_schema``, the node base class in ``_node``.
"""

from ._node import ComfyNode
from ._schema import Hidden, HiddenHolder, NodeOutput, Schema, _UIOutput
from ._types import (
    BBOX, MODEL_PATCH, SEGS, SVG, Accumulation, AnyType, Array, Audio, AudioEncoder, AudioEncoderOutput,
    Autogrow, Boolean, BoundingBox, Clip, ClipVision, ClipVisionOutput, Combo, ComfyTypeI, ComfyTypeIO,
    Conditioning, ControlAfterGenerate, ControlNet, Custom, Dict, DynamicCombo, DynamicInput, DynamicOutput,
    FaceAnalysis, Float, FlowControl, FolderType, Gligen, Guider, HookKeyframes, Hooks, Image, Input, Int,
    Latent, LatentOperation, LatentUpscaleModel, Load3D, Load3DAnimation, Load3DCamera, LoraModel, LossMap,
    Mask, MatchType, Mesh, Model, ModelPatch, MultiCombo, MultiType, Noise, NumberDisplay, Output, Photomaker,
    Point, RemoteOptions, Sampler, Sigmas, String, StyleModel, TimestepsRange, Tracks, UploadType, UpscaleModel,
    Vae, Video, Voxel, WanCameraEmbedding, Webcam, WidgetInput, comfytype, create_input_dict_v1, prune_dict,
)

__all__ = [
    "FolderType", "UploadType", "RemoteOptions", "NumberDisplay", "ControlAfterGenerate",
    "comfytype", "Custom", "Input", "WidgetInput", "Output", "ComfyTypeI", "ComfyTypeIO",
    "Boolean", "Int", "Float", "String", "Combo", "MultiCombo", "Image", "WanCameraEmbedding", "Webcam",
    "Mask", "Latent", "Conditioning", "Sampler", "Sigmas", "Noise", "Guider", "Clip", "ControlNet", "Vae",
    "Model", "ModelPatch", "MODEL_PATCH", "ClipVision", "ClipVisionOutput", "AudioEncoder", "AudioEncoderOutput",
    "StyleModel", "Gligen", "UpscaleModel", "LatentUpscaleModel", "Audio", "Video", "SVG", "LoraModel",
    "LossMap", "Voxel", "Mesh", "Hooks", "HookKeyframes", "TimestepsRange", "LatentOperation", "FlowControl",
    "Accumulation", "Load3DCamera", "Load3D", "Load3DAnimation", "Photomaker", "Point", "FaceAnalysis", "BBOX",
    "SEGS", "AnyType", "MultiType", "Tracks", "Dict", "Array",
    "MatchType", "DynamicInput", "DynamicOutput", "Autogrow", "DynamicCombo", "BoundingBox", "create_input_dict_v1",
    "HiddenHolder", "Hidden", "Schema", "ComfyNode", "NodeOutput", "prune_dict",
]
