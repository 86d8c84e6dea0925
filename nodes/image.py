"""Image nodes: load, save and preview files; scale, crop, pad, composite, blend, blur and
sharpen images; make empty ones.

Names, inputs, outputs and categories are ComfyUI's (current, Dec 2026: ``nodes.py``,
``comfy_extras/nodes_images.py``, ``nodes_mask.py``, ``nodes_post_processing.py``), so API
prompts that use them run unchanged. An IMAGE is ``[B, H, W, 3]`` float in 0..1.

Files: LoadImage reads from the input folder (a name may carry a subfolder and a
``" [input]" / " [output]" / " [temp]"`` suffix choosing the folder, as the editor's mask
editor sends); SaveImage writes numbered PNGs into the output folder, PreviewImage into temp.
All names go through :mod:`graph.folders`' safe joins and files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import string
from pathlib import Path

import torch
from PIL import Image

from graph.context import check_interrupted, current_context
from graph.folders import FolderPaths, UnsafePathError, safe_join, split_annotated_name
from graph.output_files import resolve_save_target, write_numbered
from graph.png_metadata import PngMetadataError, add_text_chunks, check_keyword
from ldm.imaging import image_io, operations as imaging
from nodes.services import Services, admit, admit_tensor, services

log = logging.getLogger(__name__)

MAX_RESOLUTION = 16384
IMAGE_UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
CROP_METHODS = ["disabled", "center"]


# -- files ---------------------------------------------------------------------------------------------

def _running_folders() -> FolderPaths | None:
    """The folders of the running server, when a context is installed.

    ``INPUT_TYPES``, ``VALIDATE_INPUTS`` and ``IS_CHANGED`` are class methods the server may
    call outside a node's execution; they list or check files only when the caller installed
    a :class:`graph.context.ExecutionContext` carrying the node services.
    """
    context = current_context()
    found = getattr(context, "services", None)
    return found.folders if isinstance(found, Services) else None


def annotated_path(folders: FolderPaths, name: str) -> Path:
    """The file for a LoadImage value: ``"sub/x.png"`` in input, or ``"x.png [output]"`` etc.
    Raises UnsafePathError for names that would leave their folder."""
    if not isinstance(name, str):
        raise UnsafePathError(f"an image name must be a string, got {type(name).__name__}")
    name, folder_type = split_annotated_name(name, "input")
    return safe_join(folders.folder_for(folder_type), name)


def input_image_names(folders: FolderPaths | None) -> list[str]:
    """Image files at the top of the input folder, sorted as ComfyUI sorts them."""
    if folders is None or not folders.input.is_dir():
        return []
    return sorted(entry.name for entry in folders.input.iterdir()
                  if entry.is_file() and not entry.name.startswith(".") and image_io.is_image_name(entry.name))


def _existing_image(name: str, folders: FolderPaths) -> Path:
    try:
        path = annotated_path(folders, name)
    except UnsafePathError:
        raise FileNotFoundError(f"Invalid image file: {name}") from None
    if not path.is_file():
        raise FileNotFoundError(f"Invalid image file: {name}")
    return path


def _file_sha256(name: str) -> str:
    folders = _running_folders()
    if folders is None:
        raise RuntimeError("no server folders to find the image in")
    digest = hashlib.sha256()
    with open(_existing_image(name, folders), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _validate_image_name(name: str):
    folders = _running_folders()
    if folders is None:  # checked again when the node runs
        return True
    try:
        _existing_image(name, folders)
    except FileNotFoundError as exc:
        return str(exc)
    return True


def admit_frames(path: Path, name: str) -> None:
    """Refuse a file whose frames cannot all be decoded in memory, from its header, before any
    frame is decoded. LoadImage returns every frame as float32 RGB plus a mask (4 values per
    pixel); decoding holds the frames and the stacked batch at once, so the peak is twice that
    (measured with tracemalloc on a 6-frame RGBA TIFF: 2.0x; 1.5x without alpha). Pillow's own
    per-frame limit (``Image.MAX_IMAGE_PIXELS``, a decompression bomb) applies when the file opens."""
    with Image.open(path) as opened:
        frames = 1 if opened.format == "MPO" else getattr(opened, "n_frames", 1)
        width, height = opened.size
    admit(2 * frames * width * height * 4 * 4,
          f"LoadImage: {name!r} holds {frames} frame{'s' if frames != 1 else ''} of {width}×{height}; "
          f"decoding them as float32")


class LoadImage:
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load_image"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": (input_image_names(_running_folders()), {"image_upload": True})}}

    def load_image(self, image):
        path = _existing_image(image, services().folders)
        try:
            admit_frames(path, image)
            return image_io.load_image(path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"Invalid image file: {image} ({exc})") from exc

    @classmethod
    def IS_CHANGED(cls, image):
        return _file_sha256(image)

    @classmethod
    def VALIDATE_INPUTS(cls, image):
        return _validate_image_name(image)


class LoadImageMask:
    CATEGORY = "image"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "load_image"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": (input_image_names(_running_folders()), {"image_upload": True}),
                             "channel": (list(image_io.MASK_CHANNELS),)}}

    def load_image(self, image, channel):
        path = _existing_image(image, services().folders)
        try:
            return (image_io.load_mask(path, channel),)
        except (OSError, ValueError) as exc:
            raise ValueError(f"Invalid image file: {image} ({exc})") from exc

    @classmethod
    def IS_CHANGED(cls, image, channel):
        return _file_sha256(image)

    @classmethod
    def VALIDATE_INPUTS(cls, image):
        return _validate_image_name(image)


def metadata_chunks(prompt, extra_pnginfo) -> dict[str, str]:
    """The PNG text chunks ComfyUI writes: ``prompt`` (JSON of the API prompt) and one JSON
    chunk per ``extra_pnginfo`` key (normally ``workflow``). Keys that cannot be PNG keywords
    are left out."""
    chunks = {}
    if prompt is not None:
        chunks["prompt"] = json.dumps(prompt)
    for key, value in (extra_pnginfo or {}).items():
        try:
            check_keyword(key)
        except PngMetadataError as exc:
            log.warning("extra_pnginfo key %r not saved: %s", key, exc)
            continue
        chunks[key] = json.dumps(value)
    return chunks


class SaveImage:
    CATEGORY = "image"
    DESCRIPTION = "Saves the input images to your ComfyUI output directory."
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    FOLDER_TYPE = "output"
    COMPRESS_LEVEL = 4

    def __init__(self):
        self.prefix_append = ""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
                    "images": ("IMAGE", {"tooltip": "The images to save."}),
                    "filename_prefix": ("STRING", {
                        "default": "ComfyUI",
                        "tooltip": "The prefix for the file to save. This may include formatting information "
                                   "such as %date:yyyy-MM-dd% or %Empty Latent Image.width% to include values "
                                   "from nodes."})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def save_images(self, images, filename_prefix="ComfyUI", prompt=None, extra_pnginfo=None):
        chunks = {} if services().options.disable_metadata else metadata_chunks(prompt, extra_pnginfo)
        results = save_png_batch(images, filename_prefix + self.prefix_append, self.FOLDER_TYPE,
                                 self.COMPRESS_LEVEL, chunks)
        # the images pass through, so a graph can go on from a save or preview
        return {"ui": {"images": results}, "result": (images,)}


def save_png_batch(images, filename_prefix: str, folder_type: str, compress_level: int,
                   chunks: dict[str, str] | None = None) -> list[dict]:
    """Writes each image of a batch as a numbered PNG (with ``chunks`` as text chunks) into the
    ``folder_type`` folder; returns the ``{"filename", "subfolder", "type"}`` entries of a ``ui``."""
    root = services().folders.folder_for(folder_type)
    if images.ndim == 3:  # one image [H, W, C] rather than a batch
        images = images.unsqueeze(0)
    height, width = images.shape[1], images.shape[2]
    target = resolve_save_target(root, filename_prefix, width, height)
    results, counter = [], target.counter
    for batch_number, image in enumerate(images):
        check_interrupted()
        data = image_io.png_bytes(image, compress_level)
        if chunks:
            data = add_text_chunks(data, chunks)
        name, counter = write_numbered(target, counter, batch_number, "png", data)
        results.append({"filename": name, "subfolder": target.subfolder, "type": folder_type})
        counter += 1
    return results


class PreviewImage(SaveImage):
    DESCRIPTION = "Preview the images without saving them to the ComfyUI output directory."
    FOLDER_TYPE = "temp"
    COMPRESS_LEVEL = 1

    def __init__(self):
        # one random suffix per node instance, so previews of different nodes never collide
        self.prefix_append = "_temp_" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(5))

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",)},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}


# -- transforms ------------------------------------------------------------------------------------------

def _int(default: int, minimum: int = 0, step: int = 1) -> tuple:
    return ("INT", {"default": default, "min": minimum, "max": MAX_RESOLUTION, "step": step})


class ImageScale:
    CATEGORY = "image/upscaling"
    # ComfyUI's class attributes; packs read them (nodes.ImageScale.upscale_methods).
    upscale_methods = IMAGE_UPSCALE_METHODS
    crop_methods = CROP_METHODS
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "upscale_method": (IMAGE_UPSCALE_METHODS,),
                             "width": _int(512), "height": _int(512), "crop": (CROP_METHODS,)}}

    def upscale(self, image, upscale_method, width, height, crop):
        if width == 0 and height == 0:
            return (image,)
        width, height = imaging.fit_size(width, height, image.shape[2], image.shape[1])
        admit_tensor("ImageScale: an image", (image.shape[0], height, width, image.shape[3]), image.dtype,
                     image.device)
        return (imaging.resample_image(image, width, height, upscale_method, crop),)


class ImageScaleBy:
    CATEGORY = "image/upscaling"
    upscale_methods = IMAGE_UPSCALE_METHODS
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "upscale_method": (IMAGE_UPSCALE_METHODS,),
                             "scale_by": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 8.0, "step": 0.01})}}

    def upscale(self, image, upscale_method, scale_by):
        width = max(1, round(image.shape[2] * scale_by))
        height = max(1, round(image.shape[1] * scale_by))
        admit_tensor("ImageScaleBy: an image", (image.shape[0], height, width, image.shape[3]), image.dtype,
                     image.device)
        return (imaging.resample_image(image, width, height, upscale_method),)


class ImageScaleToTotalPixels:
    CATEGORY = "image/upscaling"
    upscale_methods = IMAGE_UPSCALE_METHODS
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls):
        # resolution_steps: both sides rounded to a multiple of it (1: no rounding).
        return {"required": {"image": ("IMAGE",), "upscale_method": (IMAGE_UPSCALE_METHODS,),
                             "megapixels": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 16.0, "step": 0.01}),
                             "resolution_steps": ("INT", {"default": 1, "min": 1, "max": 256, "advanced": True})}}

    def upscale(self, image, upscale_method, megapixels, resolution_steps=1):
        width, height = imaging.total_pixels_size(image.shape[2], image.shape[1], megapixels, resolution_steps)
        return (imaging.resample_image(image, width, height, upscale_method),)


class ImageInvert:
    CATEGORY = "image/color"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "invert"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    def invert(self, image):
        out = 1.0 - image
        if image.shape[-1] == 4:  # alpha is coverage, not colour
            out[..., 3] = image[..., 3]
        return (out,)


class ImageBatch:
    CATEGORY = "image/batch"
    DEPRECATED = True
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "batch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image1": ("IMAGE",), "image2": ("IMAGE",)}}

    def batch(self, image1, image2):
        image1, image2 = imaging.match_channels(image1, image2)
        if image1.shape[1:] != image2.shape[1:]:
            image2 = imaging.resample_image(image2, image1.shape[2], image1.shape[1], "bilinear", "center")
        return (torch.cat((image1, image2.to(image1.device, image1.dtype)), dim=0),)


class ImageCrop:
    CATEGORY = "image/transform"
    DEPRECATED = True
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "crop"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "width": _int(512, 1), "height": _int(512, 1),
                             "x": _int(0), "y": _int(0)}}

    def crop(self, image, width, height, x, y):
        # The crop starts inside the image, at worst at its last column/row.
        x = max(0, min(x, image.shape[2] - 1))
        y = max(0, min(y, image.shape[1] - 1))
        return (image[:, y:y + height, x:x + width, :],)


class ImagePadForOutpaint:
    CATEGORY = "image/transform"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "expand_image"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "left": _int(0, step=8), "top": _int(0, step=8),
                             "right": _int(0, step=8), "bottom": _int(0, step=8),
                             "feathering": ("INT", {**_int(40)[1], "advanced": True})}}

    def expand_image(self, image, left, top, right, bottom, feathering):
        return imaging.pad_for_outpaint(image, left, top, right, bottom, feathering)


class ImageCompositeMasked:
    CATEGORY = "image/compositing"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "composite"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"destination": ("IMAGE",), "source": ("IMAGE",), "x": _int(0), "y": _int(0),
                             "resize_source": ("BOOLEAN", {"default": False})},
                "optional": {"mask": ("MASK",)}}

    def composite(self, destination, source, x, y, resize_source, mask=None):
        destination, source = imaging.match_channels(destination, source)
        pasted = imaging.composite(imaging.as_channel_first(destination), imaging.as_channel_first(source),
                                   x, y, mask, 1, resize_source)
        return (imaging.as_channel_last(pasted),)


class ImageBlend:
    CATEGORY = "image/filters"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "blend_images"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image1": ("IMAGE",), "image2": ("IMAGE",),
                             "blend_factor": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01}),
                             "blend_mode": (list(imaging.BLEND_MODES),)}}

    def blend_images(self, image1, image2, blend_factor, blend_mode):
        return (imaging.blend(image1, image2, blend_factor, blend_mode),)


class ImageBlur:
    CATEGORY = "image/filters"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "blur"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",),
                             "blur_radius": ("INT", {"default": 1, "min": 1, "max": 31, "step": 1}),
                             "sigma": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.1})}}

    def blur(self, image, blur_radius, sigma):
        return (imaging.blur(image, blur_radius, sigma),)


class ImageSharpen:
    CATEGORY = "image/filters"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "sharpen"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",),
                             "sharpen_radius": ("INT", {"default": 1, "min": 1, "max": 31, "step": 1,
                                                        "advanced": True}),
                             "sigma": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.01,
                                                 "advanced": True}),
                             "alpha": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 5.0, "step": 0.01,
                                                 "advanced": True})}}

    def sharpen(self, image, sharpen_radius, sigma, alpha):
        return (imaging.sharpen(image, sharpen_radius, sigma, alpha),)


class EmptyImage:
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"width": _int(512, 1), "height": _int(512, 1),
                             "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
                             "color": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1,
                                               "display": "color"})}}

    def generate(self, width, height, batch_size=1, color=0):
        admit_tensor("EmptyImage: an image", (batch_size, height, width, 3))
        return (imaging.solid_color(width, height, batch_size, color),)


_NODES = (LoadImage, LoadImageMask, SaveImage, PreviewImage, ImageScale, ImageScaleBy,
          ImageScaleToTotalPixels, ImageInvert, ImageBatch, ImageCrop, ImagePadForOutpaint,
          ImageCompositeMasked, ImageBlend, ImageBlur, ImageSharpen, EmptyImage)
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {
    "LoadImage": "Load Image", "LoadImageMask": "Load Image (as Mask)", "SaveImage": "Save Image",
    "PreviewImage": "Preview Image", "ImageScale": "Upscale Image", "ImageScaleBy": "Upscale Image By",
    "ImageInvert": "Invert Image Colors", "ImageBatch": "Batch Images (DEPRECATED)",
    "ImagePadForOutpaint": "Pad Image for Outpainting", "EmptyImage": "Empty Image",
    "ImageCompositeMasked": "Image Composite Masked", "ImageCrop": "Crop Image (DEPRECATED)",
    "ImageBlend": "Blend Images", "ImageBlur": "Blur Image", "ImageSharpen": "Sharpen Image",
    "ImageScaleToTotalPixels": "Scale Image to Total Pixels",
}
