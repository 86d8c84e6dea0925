"""Conditioning nodes of the paper's own LDMs (CompVis latent-diffusion), loaded with
CheckpointLoaderSimple: its CLIP output is each model's conditioning stage (``ldm.cond_stage.stages``).

- ``ClassConditioning``: the class-conditional ImageNet model's one-token context; class -1 is
  the unconditional class (cin256-v2's row 1000), the negative for classifier-free guidance; an
  ImageNet class name (``ldm.cond_stage.imagenet_classes``) may stand in for the index;
- ``LayoutConditioning``: the layout-to-image model's context from labelled boxes drawn in the
  editor's layout widget (``ldm.cond_stage.layout_stage``); the empty layout ``[]`` is the negative;
- ``LDMSuperResolutionConditioning`` / ``LDMInpaintConditioning`` / ``SemanticMapConditioning``:
  the image the concat models see beside the latent (``ldm.cond_stage.concat``), added to both
  conditionings (as InpaintModelConditioning does), with an empty latent of the matching size.
"""

from __future__ import annotations

import torch

from ldm.cond_stage.coco_stuff import coco_stuff_label
from ldm.cond_stage.concat import (
    inpaint_concat,
    label_map,
    label_map_from_masks,
    semantic_concat,
    super_resolution_concat,
)
from ldm.cond_stage.imagenet_classes import imagenet_class_index
from ldm.cond_stage.layout_stage import LAYOUT_DATASET, LayoutStage
from ldm.cond_stage.palette import labels_from_colours
from ldm.cond_stage.stages import ClassStage, SemanticStage
from ldm.sampling.model_conds import LDM_CONCAT_KEY
from ldm.text.conditioning import with_values
from ldm.text.layout_tokens import class_names

CATEGORY = "conditioning/latent diffusion"
#: ImageNet's 1000 classes; -1 is the unconditional class.
MAX_CLASS_INDEX = 999
#: How SemanticMapConditioning reads its segmentation image; the first is the node's original reading.
MAP_KINDS = ("label values", "palette colours")
#: COCO-Stuff's sky-other: the commonest backdrop of the landscape model's maps.
DEFAULT_BACKGROUND_CLASS = 156


def _stage(clip, kind: type, model: str):
    if not isinstance(clip, kind):
        raise TypeError(f"this node needs the CLIP output of a {model} LDM checkpoint, got {clip!r}")
    return clip


def _with_concat(positive: list, negative: list, concat: torch.Tensor) -> tuple[list, list, dict]:
    values = {LDM_CONCAT_KEY: concat}
    latent = {"samples": torch.zeros((concat.shape[0], 3) + tuple(concat.shape[-2:]))}
    return with_values(positive, values), with_values(negative, values), latent


class ClassConditioning:
    CATEGORY = CATEGORY
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING",)
    DESCRIPTION = ("The class conditioning of a class-conditional ImageNet LDM (cin256): the class's "
                   "embedding as a one-token context. Class -1 is the unconditional class, the negative "
                   "for classifier-free guidance. A class name, when given, overrides the index.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "clip": ("CLIP", {"tooltip": "The CLIP output of CheckpointLoaderSimple for a cin256 checkpoint."}),
            "class_index": ("INT", {"default": 0, "min": -1, "max": MAX_CLASS_INDEX,
                                    "tooltip": "ImageNet class index; -1 = unconditional."})},
            "optional": {
                "class_name": ("STRING", {"default": "", "multiline": False,
                                          "tooltip": "An ImageNet class name (e.g. 'golden retriever', any "
                                                     "case); when not empty it overrides class_index."})}}

    def encode(self, clip, class_index, class_name=""):
        if class_name.strip():
            class_index = imagenet_class_index(class_name)
        return (_stage(clip, ClassStage, "class-conditional").encode_class(class_index),)


class LayoutConditioning:
    CATEGORY = CATEGORY
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING",)
    DESCRIPTION = ("The conditioning of the paper's layout-to-image LDM (layout2img-openimages256): labelled "
                   "boxes, drawn on the layout widget, encoded by the model's layout encoder into a "
                   "92-token context. Labels are OpenImages class names or class ids (\"12\"). The empty "
                   "layout [] is the negative for classifier-free guidance.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "clip": ("CLIP", {"tooltip": "The CLIP output of CheckpointLoaderSimple for a layout-to-image "
                                         "checkpoint."}),
            "layout": ("STRING", {"default": "[]", "weft_widget": "layout_boxes", "multiline": False,
                                  "labels": class_names(LAYOUT_DATASET),
                                  "tooltip": "JSON [{label, x, y, w, h}] in 0..1 of the image, origin "
                                             "top-left; [] = the empty layout."})}}

    def encode(self, clip, layout):
        return (_stage(clip, LayoutStage, "layout-to-image").encode_layout_json(layout),)


class LDMSuperResolutionConditioning:
    CATEGORY = CATEGORY
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "negative", "latent")
    DESCRIPTION = ("Conditions the paper's super-resolution LDM (bsr_sr) on a low-res image. The latent "
                   "has the low-res image's size; its decode is that size times the first stage's factor (4).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                             "pixels": ("IMAGE", {"tooltip": "The low-resolution image."})}}

    def encode(self, positive, negative, pixels):
        return _with_concat(positive, negative, super_resolution_concat(pixels))


class LDMInpaintConditioning:
    CATEGORY = CATEGORY
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "negative", "latent")
    DESCRIPTION = ("Conditions the paper's inpainting LDM on an image and a mask (1 = repaint): the masked "
                   "image encoded by the model's first stage and the mask at latent size, as CompVis' "
                   "scripts/inpaint.py builds them.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "vae": ("VAE",),
                             "pixels": ("IMAGE",), "mask": ("MASK",)}}

    def encode(self, positive, negative, vae, pixels, mask):
        return _with_concat(positive, negative, inpaint_concat(vae, pixels, mask))


class SemanticMapConditioning:
    CATEGORY = CATEGORY
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "negative", "latent")
    DESCRIPTION = ("Conditions the paper's semantic-synthesis LDM on a label map of COCO-Stuff classes, one-hot "
                   "over the model's classes and rescaled by its SpatialRescaler. The map is the segmentation "
                   "image read as label values (first channel = class / 255, an 8-bit grey label PNG) or as "
                   "palette colours (`python -m ldm.cond_stage.palette OUT.png` draws the legend), or it is "
                   "painted from a mask set: background_class, then each mask (> 0.5) with its class.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                             "clip": ("CLIP", {"tooltip": "The CLIP output of CheckpointLoaderSimple for a "
                                                          "semantic-synthesis checkpoint."})},
                "optional": {
                    "segmentation": ("IMAGE", {"tooltip": "The label map, read as map_kind says; not needed "
                                                          "when masks are given."}),
                    "map_kind": (list(MAP_KINDS), {"default": MAP_KINDS[0],
                                                   "tooltip": "label values: value = class / 255 (grey label "
                                                              "PNG); palette colours: each pixel's nearest "
                                                              "palette colour (exact colours expected, JPEG "
                                                              "noise tolerated)."}),
                    "masks": ("MASK", {"tooltip": "A mask set [N, H, W]; used instead of segmentation."}),
                    "mask_classes": ("STRING", {"default": "", "multiline": False,
                                                "tooltip": "One class per mask, comma-separated: ids or "
                                                           "COCO-Stuff names ('sea, mountain, 105')."}),
                    "background_class": ("INT", {"default": DEFAULT_BACKGROUND_CLASS, "min": 0, "max": 255,
                                                 "tooltip": "The class where no mask is set (156 = sky-other)."})}}

    def encode(self, positive, negative, clip, segmentation=None, map_kind=MAP_KINDS[0], masks=None,
               mask_classes="", background_class=DEFAULT_BACKGROUND_CLASS):
        stage = _stage(clip, SemanticStage, "semantic-synthesis")
        labels = _semantic_labels(stage.n_classes, segmentation, map_kind, masks, mask_classes, background_class)
        return _with_concat(positive, negative, semantic_concat(stage, labels))


def _semantic_labels(n_classes: int, segmentation, map_kind: str, masks, mask_classes: str,
                     background_class: int) -> torch.Tensor:
    """The label map [B, H, W] SemanticMapConditioning's inputs describe."""
    if masks is not None:
        classes = [coco_stuff_label(part, n_classes) for part in mask_classes.split(",") if part.strip()]
        return label_map_from_masks(masks, classes, coco_stuff_label(str(background_class), n_classes))
    if segmentation is None:
        raise ValueError("SemanticMapConditioning needs a segmentation image or a mask set (masks + mask_classes)")
    if map_kind == "palette colours":
        return labels_from_colours(segmentation, n_classes)
    if map_kind != "label values":
        raise ValueError(f"unknown map_kind {map_kind!r}; one of {list(MAP_KINDS)}")
    return label_map(segmentation)


NODE_CLASS_MAPPINGS = {
    "ClassConditioning": ClassConditioning,
    "LayoutConditioning": LayoutConditioning,
    "LDMSuperResolutionConditioning": LDMSuperResolutionConditioning,
    "LDMInpaintConditioning": LDMInpaintConditioning,
    "SemanticMapConditioning": SemanticMapConditioning,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "ClassConditioning": "Class Conditioning (LDM)",
    "LayoutConditioning": "Layout Conditioning (LDM)",
    "LDMSuperResolutionConditioning": "Super-Resolution Conditioning (LDM)",
    "LDMInpaintConditioning": "Inpaint Conditioning (LDM)",
    "SemanticMapConditioning": "Semantic Map Conditioning (LDM)",
}
