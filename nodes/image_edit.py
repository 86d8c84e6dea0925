"""Image editing nodes: flip, rotate, crop, stitch, fit and pad, resize images or masks by a
rule; batches (repeat, pick, rebatch, join); tiles and grids; alpha channels and Porter-Duff
compositing; morphology; cropping to a mask; near-duplicate removal. Bounding-box nodes are in
:mod:`nodes.image_layers`.

Names, inputs, outputs and categories are ComfyUI's (Dec 2026: ``comfy_extras/nodes_images.py``,
``nodes_post_processing.py``, ``nodes_compositing.py``, ``nodes_morphology.py``,
``nodes_rebatch.py``, ``nodes_dataset.py``), so API prompts that use them run unchanged. Those
are V3 nodes; here they are V1 classes, their dynamic inputs the flat dotted keys of the API
prompt: ResizeImageMaskNode's ``resize_type`` DynamicCombo (``"resize_type.width"``, …) and the
Autogrow lists of BatchImagesNode / BatchMasksNode (``"images.image0"`` … ``"images.image49"``),
see ``facade/comfy_api/latest/_dynamic.py``. A MatchType socket is the union ``"IMAGE,MASK"``.
The algorithms are :mod:`ldm.imaging.editing` and :mod:`ldm.imaging.morphology`.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable

import torch

from ldm.imaging import editing, morphology, operations as imaging
from nodes.image import CROP_METHODS, IMAGE_UPSCALE_METHODS, MAX_RESOLUTION, save_png_batch
from nodes.image_tools import hex_to_rgb
from nodes.services import admit_tensor
from nodes.utils import grown_inputs

IMAGE_OR_MASK = "IMAGE,MASK"


def _int(default: int, minimum: int = 0, maximum: int = MAX_RESOLUTION, **extra) -> tuple:
    return ("INT", {"default": default, "min": minimum, "max": maximum, **extra})


def _first(value):
    """A widget value of an ``INPUT_IS_LIST`` node (a list of one)."""
    return value[0] if isinstance(value, list) else value


def _frames(images: list[torch.Tensor]) -> list[torch.Tensor]:
    """A list of image batches as single images ``[1, H, W, C]``."""
    return [batch[index:index + 1] for batch in images for index in range(batch.shape[0])]


def _preview_ui(images: torch.Tensor) -> dict:
    """ComfyUI's ``UI.PreviewImage``: fast PNGs in temp, no metadata."""
    suffix = "".join(secrets.choice(string.ascii_lowercase) for _ in range(5))
    return {"images": save_png_batch(images, f"ComfyUI_temp_{suffix}", "temp", 1), "animated": (False,)}


# -- transforms ----------------------------------------------------------------------------------

class ImageFlip:
    CATEGORY = "image/transform"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "flip"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",),
                             "flip_method": (["x-axis: vertically", "y-axis: horizontally"],)}}

    def flip(self, image, flip_method):
        # Flipping across the x axis mirrors rows (top <-> bottom), across the y axis columns.
        return (torch.flip(image, dims=[1] if flip_method.startswith("x") else [2]),)


class ImageRotate:
    CATEGORY = "image/transform"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "rotate"
    QUARTER_TURNS = {"none": 0, "90 degrees": 1, "180 degrees": 2, "270 degrees": 3}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "rotation": (list(cls.QUARTER_TURNS),)}}

    def rotate(self, image, rotation):
        # dims (W, H): a positive quarter turn is clockwise on screen
        return (torch.rot90(image, k=self.QUARTER_TURNS[rotation], dims=[2, 1]),)


class ImageCropV2:
    CATEGORY = "image/transform"
    DESCRIPTION = "Crop an image to the specified dimensions."
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "crop"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",),
                             "crop_region": ("BOUNDING_BOX", {"default": {"x": 0, "y": 0, "width": 512, "height": 512},
                                                              "socketless": True, "component": "ImageCrop"})}}

    def crop(self, image, crop_region):
        # ImageCrop's rule: the crop starts inside the image, at worst at its last column/row.
        x = min(crop_region.get("x", 0), image.shape[2] - 1)
        y = min(crop_region.get("y", 0), image.shape[1] - 1)
        cropped = image[:, y:y + crop_region.get("height", 512), x:x + crop_region.get("width", 512)]
        return {"ui": _preview_ui(cropped), "result": (cropped,)}


class ImageStitch:
    CATEGORY = "image/transform"
    DESCRIPTION = ("Stitches image2 to image1 in the specified direction.\n"
                   "If image2 is not provided, returns image1 unchanged.\n"
                   "Optional spacing can be added between images.")
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "stitch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image1": ("IMAGE",),
                             "direction": (list(editing.STITCH_DIRECTIONS), {"default": "right"}),
                             "match_image_size": ("BOOLEAN", {"default": True}),
                             "spacing_width": _int(0, 0, 1024, step=2, advanced=True),
                             "spacing_color": (list(editing.SPACING_COLORS), {"default": "white", "advanced": True})},
                "optional": {"image2": ("IMAGE",)}}

    def stitch(self, image1, direction, match_image_size, spacing_width, spacing_color, image2=None):
        if image2 is None:
            return (image1,)
        return (editing.stitch(image1, image2, direction, match_image_size, spacing_width, spacing_color),)


class ResizeAndPadImage:
    CATEGORY = "image/transform"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "resize_and_pad"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "target_width": _int(512, 1), "target_height": _int(512, 1),
                             "padding_color": (["white", "black"], {"advanced": True}),
                             "interpolation": (["area", "bicubic", "nearest-exact", "bilinear", "lanczos"],
                                               {"advanced": True})}}

    def resize_and_pad(self, image, target_width, target_height, padding_color, interpolation):
        fill = 0.0 if padding_color == "black" else 1.0
        return (editing.resize_and_pad(image, target_width, target_height, fill, interpolation),)


class ImageScaleToMaxDimension:
    CATEGORY = "image/upscaling"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls):
        # ComfyUI's list, "bilinear" twice included, so the editor shows the same choices.
        return {"required": {"image": ("IMAGE",),
                             "upscale_method": (["area", "lanczos", "bilinear", "nearest-exact", "bilinear", "bicubic"],),
                             "largest_size": _int(512)}}

    def upscale(self, image, upscale_method, largest_size):
        width, height = editing.longer_side_size(image.shape[2], image.shape[1], largest_size)
        return (imaging.resample_image(image, width, height, upscale_method),)


class ResizeImageMaskNode:
    CATEGORY = "image/transform"
    DESCRIPTION = "Resize an image or mask using various scaling methods."
    RETURN_TYPES = (IMAGE_OR_MASK,)
    RETURN_NAMES = ("resized",)
    FUNCTION = "resize"
    RESIZE_TYPES = ("scale dimensions", "scale by multiplier", "scale longer dimension", "scale shorter dimension",
                    "scale width", "scale height", "scale total pixels", "match size", "scale to multiple")
    #: The DynamicCombo's inputs per option, by their sub-input names.
    OPTION_INPUTS = {
        "scale dimensions": ("width", "height", "crop"), "scale by multiplier": ("multiplier",),
        "scale longer dimension": ("longer_size",), "scale shorter dimension": ("shorter_size",),
        "scale width": ("width",), "scale height": ("height",), "scale total pixels": ("megapixels", "multiple"),
        "match size": ("match", "crop"), "scale to multiple": ("multiple",),
    }

    @classmethod
    def INPUT_TYPES(cls):
        crop = (list(CROP_METHODS), {
            "default": "center",
            "tooltip": "How to handle aspect ratio mismatch: 'disabled' stretches to fit, 'center' crops "
                       "to maintain aspect ratio."})
        # Sub-inputs several options share (width, height, multiple) keep only what they agree on.
        return {"required": {
                    "input": (IMAGE_OR_MASK,),
                    "resize_type": (list(cls.RESIZE_TYPES), {
                        "tooltip": "Select how to resize: by exact dimensions, scale factor, matching another "
                                   "image, etc."}),
                    "scale_method": (IMAGE_UPSCALE_METHODS, {
                        "default": "area",
                        "tooltip": "Interpolation algorithm. 'area' is best for downscaling, 'lanczos' for "
                                   "upscaling, 'nearest-exact' for pixel art."})},
                "optional": {
                    "resize_type.width": _int(512, step=1),
                    "resize_type.height": _int(512, step=1),
                    "resize_type.crop": crop,
                    "resize_type.multiplier": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 8.0, "step": 0.01,
                                                         "tooltip": "Scale factor (e.g., 2.0 doubles size, 0.5 "
                                                                    "halves size)."}),
                    "resize_type.longer_size": _int(512, step=1, tooltip="The longer edge will be resized to this "
                                                                          "value. Aspect ratio is preserved."),
                    "resize_type.shorter_size": _int(512, step=1, tooltip="The shorter edge will be resized to this "
                                                                          "value. Aspect ratio is preserved."),
                    "resize_type.megapixels": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 16.0, "step": 0.01,
                                                         "tooltip": "Target total megapixels (e.g., 1.0 ≈ 1024×1024). "
                                                                    "Aspect ratio is preserved."}),
                    "resize_type.match": (IMAGE_OR_MASK, {"tooltip": "Resize input to match the dimensions of this "
                                                                     "reference image or mask."}),
                    "resize_type.multiple": ("INT", {"min": 1, "max": MAX_RESOLUTION, "step": 1}),
                }}

    def resize(self, input, resize_type, scale_method, **options):
        if resize_type not in self.OPTION_INPUTS:
            raise ValueError(f"Unsupported resize type: {resize_type}")
        missing = [name for name in self.OPTION_INPUTS[resize_type] if f"resize_type.{name}" not in options]
        if missing:
            raise ValueError(f"resize type {resize_type!r} needs the inputs {', '.join('resize_type.' + n for n in missing)}")
        chosen = {name: options[f"resize_type.{name}"] for name in self.OPTION_INPUTS[resize_type]}
        height, width = input.shape[1], input.shape[2]
        crop = chosen.get("crop", "disabled")
        if resize_type == "scale to multiple":
            return (editing.scale_to_multiple_cover(input, chosen["multiple"], scale_method),)
        if resize_type == "match size":
            size = chosen["match"].shape[2], chosen["match"].shape[1]
        elif resize_type == "scale by multiplier":
            size = round(width * chosen["multiplier"]), round(height * chosen["multiplier"])
        elif resize_type == "scale longer dimension":
            size = editing.longer_side_size(width, height, chosen["longer_size"])
        elif resize_type == "scale shorter dimension":
            size = editing.shorter_side_size(width, height, chosen["shorter_size"])
        elif resize_type == "scale total pixels":
            size = imaging.total_pixels_size(width, height, chosen["megapixels"], chosen["multiple"])
        else:  # scale dimensions / width / height: a 0 side keeps the aspect
            wanted_w, wanted_h = chosen.get("width", 0), chosen.get("height", 0)
            if wanted_w == 0 and wanted_h == 0:
                return (input,)
            size = imaging.fit_size(wanted_w, wanted_h, width, height)
        return (editing.resize_any(input, size[0], size[1], scale_method, crop),)


# -- batches -------------------------------------------------------------------------------------

class RepeatImageBatch:
    CATEGORY = "image/batch"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "repeat"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "amount": _int(1, 1, 4096)}}

    def repeat(self, image, amount):
        admit_tensor("RepeatImageBatch: an image", (image.shape[0] * amount, *image.shape[1:]), image.dtype,
                     image.device)
        return (image.repeat((amount, 1, 1, 1)),)


class ImageFromBatch:
    CATEGORY = "image/batch"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "frombatch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "batch_index": _int(0, -MAX_RESOLUTION),
                             "length": _int(1, 1, 4096)}}

    def frombatch(self, image, batch_index, length):
        # A negative index counts from the end; out-of-range indices are clamped into the batch.
        if batch_index < 0:
            batch_index += image.shape[0]
        batch_index = max(0, min(image.shape[0] - 1, batch_index))
        return (image[batch_index:batch_index + length].clone(),)


class RebatchImages:
    CATEGORY = "image/batch"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "rebatch"
    INPUT_IS_LIST = True
    OUTPUT_IS_LIST = (True,)

    @classmethod
    def INPUT_TYPES(cls):
        # overlap and merge_overlap_mode came to ComfyUI later; optional, so older prompts run.
        return {"required": {"images": ("IMAGE",),
                             "batch_size": _int(1, 1, 4096, tooltip="Number of images or frames in each output batch.")},
                "optional": {"overlap": _int(0, 0, 4096, advanced=True,
                                             tooltip="Frames duplicated between output splits and reconciled between "
                                                     "input batches."),
                             "merge_overlap_mode": (list(editing.MERGE_MODES), {
                                 "default": "truncate start", "advanced": True,
                                 "tooltip": "How overlapping frames from consecutive input batches are merged."})}}

    def rebatch(self, images, batch_size, overlap=0, merge_overlap_mode="truncate start"):
        return (editing.rebatch(images, _first(batch_size), _first(overlap), _first(merge_overlap_mode)),)


_AUTOGROW_MAX = 50


class _AutogrowBatch:
    """One batch of every connected input: the Autogrow group ``GROUP`` (inputs ``NAMES``, of the
    output's type), joined by ``BATCH``."""

    RETURN_TYPES: tuple[str]
    FUNCTION = "batch"
    GROUP: str
    NAMES: list[str]
    BATCH: Callable  # staticmethod: list of tensors -> one batch

    @classmethod
    def INPUT_TYPES(cls):
        kind = cls.RETURN_TYPES[0]
        keys = [f"{cls.GROUP}.{name}" for name in cls.NAMES]
        return {"required": {keys[0]: (kind,)}, "optional": {key: (kind,) for key in keys[1:]}}

    def batch(self, **inputs):
        return (self.BATCH(list(grown_inputs(inputs, self.GROUP, self.NAMES).values())),)


class BatchImagesNode(_AutogrowBatch):
    CATEGORY = "image/batch"
    RETURN_TYPES = ("IMAGE",)
    GROUP = "images"
    NAMES = [f"image{index}" for index in range(_AUTOGROW_MAX)]
    BATCH = staticmethod(editing.batch_images)


class BatchMasksNode(_AutogrowBatch):
    CATEGORY = "image/mask"
    RETURN_TYPES = ("MASK",)
    GROUP = "masks"
    NAMES = [f"mask{index}" for index in range(_AUTOGROW_MAX)]
    BATCH = staticmethod(editing.batch_masks)


class GetImageSize:
    CATEGORY = "image"
    DESCRIPTION = "Returns the width, height, and batch size of the image."
    RETURN_TYPES = ("INT", "INT", "INT")
    RETURN_NAMES = ("width", "height", "batch_size")
    FUNCTION = "get_size"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    def get_size(self, image):
        return image.shape[2], image.shape[1], image.shape[0]


# -- tiles, grids and duplicates -----------------------------------------------------------------

class SplitImageToTileList:
    CATEGORY = "image/batch"
    DESCRIPTION = "Splits an image into a batched list of tiles with a specified overlap."
    RETURN_TYPES = ("IMAGE",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "split"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "tile_width": _int(1024, 64), "tile_height": _int(1024, 64),
                             "overlap": _int(128, 0, 4096)}}

    def split(self, image, tile_width, tile_height, overlap):
        return (editing.split_tiles(image, tile_width, tile_height, overlap),)


class ImageMergeTileList:
    CATEGORY = "image/batch"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "merge"
    INPUT_IS_LIST = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image_list": ("IMAGE",), "final_width": _int(1024, 64, 32768),
                             "final_height": _int(1024, 64, 32768), "overlap": _int(128, 0, 4096)}}

    def merge(self, image_list, final_width, final_height, overlap):
        return (editing.merge_tiles(image_list, _first(final_width), _first(final_height), _first(overlap)),)


class ImageGrid:
    CATEGORY = "image/batch"
    DESCRIPTION = "Arrange multiple images into a grid layout."
    EXPERIMENTAL = True
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "grid"
    INPUT_IS_LIST = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE", {"tooltip": "List of images to process."}),
                             "columns": _int(4, 1, 20, tooltip="Number of columns in the grid."),
                             "cell_width": _int(256, 32, 2048, tooltip="Width of each cell in the grid.", advanced=True),
                             "cell_height": _int(256, 32, 2048, tooltip="Height of each cell in the grid.", advanced=True),
                             "padding": _int(4, 0, 50, tooltip="Padding between images.", advanced=True)}}

    def grid(self, images, columns, cell_width, cell_height, padding):
        return (editing.image_grid(_frames(images), _first(columns), _first(cell_width), _first(cell_height),
                                     _first(padding)),)


class ImageDeduplication:
    CATEGORY = "image/batch"
    DESCRIPTION = "Remove duplicate or very similar images from a list."
    EXPERIMENTAL = True
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "deduplicate"
    INPUT_IS_LIST = True
    OUTPUT_IS_LIST = (True,)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE", {"tooltip": "List of images to process."}),
                             "similarity_threshold": ("FLOAT", {
                                 "default": 0.95, "min": 0.0, "max": 1.0, "advanced": True,
                                 "tooltip": "Similarity threshold (0-1). Higher means more similar. Images above "
                                            "this threshold are considered duplicates."})}}

    def deduplicate(self, images, similarity_threshold):
        frames = _frames(images)
        return ([frames[index] for index in editing.distinct_indices(frames, _first(similarity_threshold))],)


# -- alpha and compositing -----------------------------------------------------------------------

class JoinImageWithAlpha:
    CATEGORY = "mask/compositing"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "join"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "alpha": ("MASK",)}}

    def join(self, image, alpha):
        return (editing.join_alpha(image, alpha),)


class SplitImageWithAlpha:
    CATEGORY = "mask/compositing"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "split"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    def split(self, image):
        return editing.split_alpha(image)


class PorterDuffImageComposite:
    CATEGORY = "mask/compositing"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "composite"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"source": ("IMAGE",), "source_alpha": ("MASK",), "destination": ("IMAGE",),
                             "destination_alpha": ("MASK",),
                             "mode": (list(editing.PORTER_DUFF_MODES), {"default": "DST"})}}

    def composite(self, source, source_alpha, destination, destination_alpha, mode):
        return editing.porter_duff_batch(source, source_alpha, destination, destination_alpha, mode)


class Morphology:
    CATEGORY = "image/filters"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "process"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "operation": (list(morphology.OPERATIONS),),
                             "kernel_size": _int(3, 3, 999, step=1)}}

    def process(self, image, operation, kernel_size):
        samples = imaging.as_channel_first(image)
        return (imaging.as_channel_last(morphology.apply(samples, operation, kernel_size)),)


class ImageCropToMask:
    CATEGORY = "image/transform"
    DESCRIPTION = ("Crop an image to its mask's bounding box (centered, with pad_factor margin), then "
                   "composite the masked subject over a background and resize it.")
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "crop"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE",), "masks": ("MASK",),
            "width": _int(1024, 64, 4096, step=8, tooltip="Output width in pixels."),
            "height": _int(1024, 64, 4096, step=8, tooltip="Output height in pixels."),
            "pad_factor": ("FLOAT", {"default": 1.0, "min": 1.0, "max": 2.0, "step": 0.01,
                                     "tooltip": "Extra margin around the mask bounding box as a multiplier."}),
            "grow_mask": _int(0, -32, 32, step=1, tooltip="Grow or shrink the mask by this many pixels before cropping."),
            "background": ("COLOR", {"default": "#000000", "tooltip": "Background color behind the masked subject."})}}

    def crop(self, images, masks, width, height, pad_factor, grow_mask, background):
        masks = imaging.as_mask_batch(masks)
        if masks.shape[0] == 1 and images.shape[0] > 1:
            masks = masks.expand(images.shape[0], -1, -1)
        elif masks.shape[0] != images.shape[0]:
            raise ValueError(f"Mask batch {masks.shape[0]} does not match image batch {images.shape[0]}")
        if masks.shape[1:] != images.shape[1:3]:
            masks = editing.resize_any(masks.float(), images.shape[2], images.shape[1], "bilinear")
        fill = hex_to_rgb(background)
        crops = [editing.crop_to_mask(image, mask, width, height, pad_factor, grow_mask, fill)
                 for image, mask in zip(images, masks)]
        return (torch.cat(crops).to(images.device),)


_NODES = (ImageFlip, ImageRotate, ImageCropV2, ImageStitch, ResizeAndPadImage, ImageScaleToMaxDimension,
          ResizeImageMaskNode, RepeatImageBatch, ImageFromBatch, RebatchImages, BatchImagesNode, BatchMasksNode,
          GetImageSize, SplitImageToTileList, ImageMergeTileList, ImageGrid, ImageDeduplication,
          JoinImageWithAlpha, SplitImageWithAlpha, PorterDuffImageComposite, Morphology, ImageCropToMask)
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {
    "ImageFlip": "Flip Image", "ImageRotate": "Rotate Image", "ImageCropV2": "Crop Image",
    "ImageStitch": "Stitch Images", "ResizeAndPadImage": "Resize And Pad Image",
    "ImageScaleToMaxDimension": "Scale Image to Max Dimension", "ResizeImageMaskNode": "Resize Image/Mask",
    "RepeatImageBatch": "Repeat Image Batch", "ImageFromBatch": "Get Image from Batch",
    "RebatchImages": "Rebatch Images", "BatchImagesNode": "Batch Images", "BatchMasksNode": "Batch Masks",
    "GetImageSize": "Get Image Size", "SplitImageToTileList": "Split Image into List of Tiles",
    "ImageMergeTileList": "Merge List of Tiles to Image", "ImageGrid": "Make Image Grid",
    "ImageDeduplication": "Deduplicate Images", "JoinImageWithAlpha": "Join Image with Alpha",
    "SplitImageWithAlpha": "Split Image with Alpha", "PorterDuffImageComposite": "Porter-Duff Image Composite",
    "Morphology": "Apply Morphology", "ImageCropToMask": "Crop Image to Mask",
}
