"""Dataset nodes, ComfyUI's ``comfy_extras/nodes_dataset.py`` and the image-set loaders of its
``nodes_train.py``: image folders (with ``.txt`` captions) as lists, per-image transforms,
shuffling, saving lists back to folders, and the encoded training set of ``TrainLoraNode`` —
``MakeTrainingDataset`` (VAE + CLIP), ``ResolutionBucket``, ``SaveTrainingDataset`` /
``LoadTrainingDataset``.

List nodes follow ComfyUI's list protocol: ``INPUT_IS_LIST`` nodes get every input as a list
(settings as one-item lists), ``OUTPUT_IS_LIST`` outputs hand a list downstream item by item.
The algorithms live in :mod:`ldm.training.datasets`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from graph.atomic import write_atomic
from graph.folders import safe_join
from graph.output_files import next_counter
from ldm.imaging import image_io
from ldm.training import datasets as ds
from nodes.conditioning import encode_tokens
from nodes.services import Services, running_services, services
from nodes.vae import using_vae

log = logging.getLogger(__name__)

SEED = ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip": "Random seed."})
SIZE = {"min": 1, "max": 8192}
IMAGES_OUT_TOOLTIP = "Processed images"


def _input_subfolders() -> list[str]:
    """Every folder below input/, ``/``-joined and sorted (a combo's options; none outside a run)."""
    found = running_services()
    if found is None or not found.folders.input.is_dir():
        return []
    root = found.folders.input
    return sorted(str(path.relative_to(root)).replace("\\", "/") for path in root.rglob("*") if path.is_dir())


def _input_folder(folder: str) -> Path:
    return safe_join(services().folders.input, folder)


def _output_folder(folder_name: str) -> Path:
    return safe_join(services().folders.output, folder_name)


def _dataset_roots(found: Services) -> list[Path]:
    """Where training sets are kept: ``<base>/datasets`` (ComfyUI's default, beside ``models/``),
    then any ``datasets`` folders an extra-paths file added."""
    default = found.folders.base / "datasets"
    return [default] + [root for root in found.folders.models.get("datasets", []) if root != default]


def _dataset_subfolder(root: Path, folder_name: str) -> Path:
    target = safe_join(root, folder_name)
    if target == safe_join(root):
        raise ValueError("folder_name must name a subfolder of the datasets directory, e.g. 'my_dataset'.")
    return target


# -- loading ---------------------------------------------------------------------------------------------

class LoadImageDataSetFromFolder:
    DESCRIPTION = ("Load a dataset of images from a specified folder and return a list of images. "
                   "Supported formats: PNG, JPG, JPEG, WEBP.")
    CATEGORY = "image"
    FUNCTION = "load"
    EXPERIMENTAL = True
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_IS_LIST = (True,)
    OUTPUT_TOOLTIPS = ("List of loaded images",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"folder": (_input_subfolders(), {"tooltip": "The folder to load images from."})}}

    def load(self, folder):
        paths = ds.folder_images(_input_folder(folder))
        if not paths:
            raise ValueError("No valid images found in input")
        return ([ds.load_rgb(path) for path in paths],)


class LoadImageTextDataSetFromFolder:
    DESCRIPTION = ("Load a dataset of pairs of images and text captions from a specified folder and return them "
                   "as a list. Supported formats: PNG, JPG, JPEG, WEBP.")
    CATEGORY = "image"
    FUNCTION = "load"
    EXPERIMENTAL = True
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("images", "texts")
    OUTPUT_IS_LIST = (True, True)
    OUTPUT_TOOLTIPS = ("List of loaded images", "List of text captions")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"folder": (_input_subfolders(),
                                        {"tooltip": "The folder to load images and text captions from."})}}

    def load(self, folder):
        paths = ds.kohya_images(_input_folder(folder))
        if not paths:
            raise ValueError("No valid images found in input")
        return [ds.load_rgb(path) for path in paths], [ds.caption_for(path) for path in paths]


_RESIZE_OPTION = {"resize_method": (ds.RESIZE_METHODS, {"default": "None"})}


class LoadImageSetFromFolderNode:
    DESCRIPTION = "Loads a batch of images from a directory for training."
    CATEGORY = "loaders"
    FUNCTION = "load_images"
    EXPERIMENTAL = True
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"folder": (_input_subfolders(), {"tooltip": "The folder to load images from."})},
                "optional": dict(_RESIZE_OPTION)}

    def load_images(self, folder, resize_method="None"):
        return (ds.load_same_size(ds.folder_images(_input_folder(folder)), resize_method),)


class LoadImageTextSetFromFolderNode:
    DESCRIPTION = "Loads a batch of images and caption from a directory for training."
    CATEGORY = "loaders"
    FUNCTION = "load_images"
    EXPERIMENTAL = True
    RETURN_TYPES = ("IMAGE", "CONDITIONING")

    @classmethod
    def INPUT_TYPES(cls):
        side = {"default": -1, "min": -1, "max": 10000, "step": 1}
        return {"required": {
                    "folder": (_input_subfolders(), {"tooltip": "The folder to load images from."}),
                    "clip": ("CLIP", {"tooltip": "The CLIP model used for encoding the text."}),
                },
                "optional": {
                    **_RESIZE_OPTION,
                    "width": ("INT", {**side, "tooltip": "The width to resize the images to. -1 means use the "
                                                         "original width."}),
                    "height": ("INT", {**side, "tooltip": "The height to resize the images to. -1 means use the "
                                                          "original height."}),
                }}

    def load_images(self, folder, clip, resize_method="None", width=-1, height=-1):
        if clip is None:
            raise RuntimeError("ERROR: clip input is invalid: None\n\nIf the clip is from a checkpoint loader node "
                               "your checkpoint does not contain a valid clip or text encoder model.")
        paths = ds.kohya_images(_input_folder(folder))
        images = ds.load_same_size(paths, resize_method, None if width == -1 else width,
                                   None if height == -1 else height)
        # One conditioning entry per image, in image order (ComfyUI adds a second, empty entry for
        # each uncaptioned image, which leaves more entries than images).
        conditioning = [entry for path in paths
                        for entry in encode_tokens(clip, clip.tokenize(ds.caption_for(path)))]
        return images, conditioning


class LoadImageSetNode:
    DESCRIPTION = "Loads a batch of images from a directory for training."
    CATEGORY = "loaders"
    FUNCTION = "load_images"
    EXPERIMENTAL = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def INPUT_TYPES(cls):
        found = running_services()
        names = []
        if found is not None and found.folders.input.is_dir():
            names = sorted(p.name for p in found.folders.input.iterdir()
                           if p.is_file() and ds.has_image_extension(p.name, ds.IMAGE_SET_EXTENSIONS))
        return {"required": {"images": (names, {"image_upload": True, "allow_batch": True})},
                "optional": dict(_RESIZE_OPTION)}

    @classmethod
    def VALIDATE_INPUTS(cls, images, resize_method=None):
        found = running_services()
        if found is None:  # checked again when the node runs
            return True
        for name in _file_names(images):
            if not _input_file(found, name).is_file():
                return f"Invalid image file: {name}"
        return True

    def load_images(self, images, resize_method=("None",)):
        names = [name for name in _file_names(images) if ds.has_image_extension(name, ds.IMAGE_SET_EXTENSIONS)]
        paths = [_input_file(services(), name) for name in names]
        return (ds.load_same_size(paths, resize_method[0]),)


def _file_names(images) -> list[str]:
    """The file names of ``images``: one name, a list of names (a batch selection), or the list
    of them a list input makes of either."""
    if isinstance(images, str):
        return [images]
    return [name for item in images for name in ([item] if isinstance(item, str) else item)]


def _input_file(found: Services, name: str) -> Path:
    return safe_join(found.folders.input, name)


# -- saving ----------------------------------------------------------------------------------------------

def _save_frames(images, folder: Path, prefix: str, overwrite: bool) -> list[str]:
    """Each frame as ``<prefix>_<index>.png`` (overwrite) or ``<prefix>_<counter>_<index>.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    counter = None if overwrite else next_counter(folder, prefix)
    names = []
    for index, frame in enumerate(ds.split_frames(images)):
        name = f"{prefix}_{index:05d}.png" if overwrite else f"{prefix}_{counter:05}_{index:05d}.png"
        write_atomic(folder / name, image_io.png_bytes(frame), overwrite=True)
        names.append(name)
    return names


def _save_inputs(with_texts: bool) -> dict:
    required = {"images": ("IMAGE", {"tooltip": "List of images to save."})}
    optional = {"texts": ("STRING", {"forceInput": True, "tooltip": "List of text captions to save."})}
    required.update({
        "folder_name": ("STRING", {"default": "dataset",
                                   "tooltip": "Name of the folder to save images to (inside output directory)."}),
        "filename_prefix": ("STRING", {"default": "image", "advanced": True,
                                       "tooltip": "Prefix for saved image filenames."}),
        "mode": (["overwrite", "increment"], {"default": "overwrite",
                                              "tooltip": "Whether to overwrite existing files or increment "
                                                         "filenames to avoid overwriting."}),
    })
    return {"required": required, "optional": optional} if with_texts else {"required": required}


class SaveImageDataSetToFolder:
    DESCRIPTION = "Save a dataset of images to a specified folder. Supported formats: PNG."
    CATEGORY = "image"
    FUNCTION = "save"
    OUTPUT_NODE = True
    EXPERIMENTAL = True
    DEPRECATED = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ()

    @classmethod
    def INPUT_TYPES(cls):
        return _save_inputs(with_texts=False)

    def save(self, images, folder_name, filename_prefix, mode):
        folder = _output_folder(folder_name[0])
        names = _save_frames(images, folder, filename_prefix[0], mode[0] == "overwrite")
        log.info("saved %d images to %s", len(names), folder)
        return {}


class SaveImageTextDataSetToFolder:
    DESCRIPTION = ("Save a dataset of pairs of images and text captions to a specified folder. Images are saved as "
                   "PNG files and captions are saved as TXT files with the same filename_prefix.")
    CATEGORY = "image"
    FUNCTION = "save"
    OUTPUT_NODE = True
    EXPERIMENTAL = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ()

    @classmethod
    def INPUT_TYPES(cls):
        return _save_inputs(with_texts=True)

    def save(self, images, folder_name, filename_prefix, mode, texts=None):
        folder = _output_folder(folder_name[0])
        names = _save_frames(images, folder, filename_prefix[0], mode[0] == "overwrite")
        for name, caption in zip(names, texts or []):
            (folder / (name[: -len(".png")] + ".txt")).write_text(caption, encoding="utf-8")
        log.info("saved %d images and captions to %s", len(names), folder)
        return {}


# -- per-image transforms ----------------------------------------------------------------------------------

class _ImageTransform:
    """One image (batch) in, the transformed image out; a list is mapped item by item by the
    executor. Subclasses set ``TRANSFORM`` (an ``ldm.training.datasets`` function taking the image
    and the extra inputs); ``PER_FRAME`` ones go through 8-bit pictures one frame at a time."""

    FUNCTION = "process"
    EXPERIMENTAL = True
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = (IMAGES_OUT_TOOLTIP,)
    PER_FRAME = True
    EXTRA_INPUTS: dict = {}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE", {"tooltip": "Image to process."}), **cls.EXTRA_INPUTS}}

    def process(self, images, **settings):
        if not self.PER_FRAME:
            return (self.TRANSFORM(images, **settings),)
        return (torch.cat([self.TRANSFORM(images[i:i + 1], **settings) for i in range(images.shape[0])]),)


class ResizeImagesByShorterEdge(_ImageTransform):
    DESCRIPTION = ("Resize images so that the shorter edge matches the specified dimension while preserving "
                   "aspect ratio.")
    CATEGORY = "image/transform"
    DEPRECATED = True
    EXTRA_INPUTS = {"shorter_edge": ("INT", {"default": 512, **SIZE,
                                             "tooltip": "Target dimension for the shorter edge."})}

    TRANSFORM = staticmethod(ds.resize_shorter_edge)


class ResizeImagesByLongerEdge(_ImageTransform):
    DESCRIPTION = ("Resize images so that the longer edge matches the specified dimension while preserving "
                   "aspect ratio.")
    CATEGORY = "image/transform"
    DEPRECATED = True
    EXTRA_INPUTS = {"longer_edge": ("INT", {"default": 1024, **SIZE,
                                            "tooltip": "Target dimension for the longer edge."})}

    TRANSFORM = staticmethod(ds.resize_longer_edge)


_CROP_SIZE = {"width": ("INT", {"default": 512, **SIZE, "tooltip": "Crop width."}),
              "height": ("INT", {"default": 512, **SIZE, "tooltip": "Crop height."})}


class CenterCropImages(_ImageTransform):
    DESCRIPTION = "Center crop an image to the specified dimensions."
    CATEGORY = "image/transform"
    EXTRA_INPUTS = dict(_CROP_SIZE)

    TRANSFORM = staticmethod(ds.center_crop)


class RandomCropImages(_ImageTransform):
    DESCRIPTION = "Randomly crop an image to the specified dimensions."
    CATEGORY = "image/transform"
    EXTRA_INPUTS = {**_CROP_SIZE, "seed": SEED}

    TRANSFORM = staticmethod(ds.random_crop)


class NormalizeImages(_ImageTransform):
    DESCRIPTION = "Normalize images using mean and standard deviation."
    CATEGORY = "image/color"
    PER_FRAME = False
    EXTRA_INPUTS = {
        "mean": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "advanced": True,
                           "tooltip": "Mean value for normalization."}),
        "std": ("FLOAT", {"default": 0.5, "min": 0.001, "max": 1.0, "advanced": True,
                          "tooltip": "Standard deviation for normalization."}),
    }

    TRANSFORM = staticmethod(ds.normalize)


class AdjustBrightness(_ImageTransform):
    DESCRIPTION = "Adjust the brightness of an image."
    CATEGORY = "image/adjustments"
    PER_FRAME = False
    EXTRA_INPUTS = {"factor": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0,
                                         "tooltip": "Brightness factor. 1.0 = no change, <1.0 = darker, "
                                                    ">1.0 = brighter."})}

    TRANSFORM = staticmethod(ds.adjust_brightness)


class AdjustContrast(_ImageTransform):
    DESCRIPTION = "Adjust the contrast of an image."
    CATEGORY = "image/adjustments"
    PER_FRAME = False
    EXTRA_INPUTS = {"factor": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0,
                                         "tooltip": "Contrast factor. 1.0 = no change, <1.0 = less contrast, "
                                                    ">1.0 = more contrast."})}

    TRANSFORM = staticmethod(ds.adjust_contrast)


# -- shuffling ---------------------------------------------------------------------------------------------

class ShuffleDataset:
    DESCRIPTION = "Randomly shuffle the order of images in a list."
    CATEGORY = "image/batch"
    FUNCTION = "shuffle"
    EXPERIMENTAL = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_IS_LIST = (True,)
    OUTPUT_TOOLTIPS = (IMAGES_OUT_TOOLTIP,)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE", {"tooltip": "List of images to process."}), "seed": SEED}}

    def shuffle(self, images, seed):
        # A batch in the list counts as that many images.
        frames = [image[i:i + 1] for image in images for i in range(image.shape[0])]
        return ([frames[i] for i in ds.seeded_permutation(len(frames), seed[0])],)


class ShuffleImageTextDataset:
    DESCRIPTION = "Randomly shuffle the order of pairs of image-text in a list."
    CATEGORY = "image/batch"
    FUNCTION = "shuffle"
    EXPERIMENTAL = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("images", "texts")
    OUTPUT_IS_LIST = (True, True)
    OUTPUT_TOOLTIPS = ("Shuffled images", "Shuffled texts")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE", {"tooltip": "List of images to shuffle."}),
                             "texts": ("STRING", {"forceInput": True, "tooltip": "List of texts to shuffle."}),
                             "seed": SEED}}

    def shuffle(self, images, texts, seed):
        order = ds.seeded_permutation(len(images), seed[0])
        return [images[i] for i in order], [texts[i] for i in order]


# -- training sets ---------------------------------------------------------------------------------------

class ResolutionBucket:
    DESCRIPTION = "Group latents and conditionings into buckets"
    CATEGORY = "model/training"
    FUNCTION = "bucket"
    EXPERIMENTAL = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ("LATENT", "CONDITIONING")
    RETURN_NAMES = ("latents", "conditioning")
    OUTPUT_IS_LIST = (True, True)
    OUTPUT_TOOLTIPS = ("List of batched latent dicts, one per resolution bucket.",
                       "List of condition lists, one per resolution bucket.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "latents": ("LATENT", {"tooltip": "List of latent dicts to bucket by resolution."}),
            "conditioning": ("CONDITIONING", {"tooltip": "List of conditioning lists (must match latents length)."}),
        }}

    def bucket(self, latents, conditioning):
        return ds.resolution_buckets(latents, conditioning)


class MakeTrainingDataset:
    DESCRIPTION = ("Encode images with VAE and texts with CLIP to create a training dataset of latents and "
                   "conditionings.")
    CATEGORY = "model/training"
    FUNCTION = "make"
    EXPERIMENTAL = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ("LATENT", "CONDITIONING")
    RETURN_NAMES = ("latents", "conditioning")
    OUTPUT_IS_LIST = (True, True)
    OUTPUT_TOOLTIPS = ("List of latent dicts", "List of conditioning lists")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
                    "images": ("IMAGE", {"tooltip": "List of images to encode."}),
                    "vae": ("VAE", {"tooltip": "VAE model for encoding images to latents."}),
                    "clip": ("CLIP", {"tooltip": "CLIP model for encoding text to conditioning."}),
                },
                "optional": {
                    "texts": ("STRING", {"forceInput": True,
                                         "tooltip": "List of text captions. Can be length n (matching images), 1 "
                                                    "(repeated for all), or omitted (uses empty string)."}),
                }}

    def make(self, images, vae, clip, texts=None):
        vae, clip = vae[0], clip[0]
        texts = texts or [""]
        if len(texts) == 1 and len(images) > 1:
            texts = texts * len(images)
        elif len(texts) != len(images):
            raise ValueError(f"Number of texts ({len(texts)}) does not match number of images ({len(images)}). "
                             f"Text list should have length {len(images)}, 1, or 0.")
        latents = []
        for image in images:
            with using_vae(vae, vae.encode_memory_bytes((1, *image.shape[1:]))):
                latents.append({"samples": vae.encode(image[:, :, :, :3])})
        conditioning = [encode_tokens(clip, clip.tokenize(text)) for text in texts]
        return latents, conditioning


class SaveTrainingDataset:
    DESCRIPTION = ("Save encoded training dataset (latents + conditioning) to disk for efficient loading during "
                   "training.")
    CATEGORY = "model/training"
    FUNCTION = "save"
    OUTPUT_NODE = True
    EXPERIMENTAL = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ()

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "latents": ("LATENT", {"tooltip": "List of latent dicts from MakeTrainingDataset."}),
            "conditioning": ("CONDITIONING", {"tooltip": "List of conditioning lists from MakeTrainingDataset."}),
            "folder_name": ("STRING", {"default": "training_dataset",
                                       "tooltip": "Name of folder to save the dataset into, inside the datasets "
                                                  "directory. Subfolders like 'project/run1' are allowed."}),
            "shard_size": ("INT", {"default": 1000, "min": 1, "max": 100000, "advanced": True,
                                   "tooltip": "Number of samples per shard file."}),
        }}

    def save(self, latents, conditioning, folder_name, shard_size):
        folder = _dataset_subfolder(_dataset_roots(services())[0], folder_name[0])
        shards = ds.save_shards(folder, latents, conditioning, shard_size[0])
        log.info("saved %d samples in %d shards to %s", len(latents), shards, folder)
        return {}


class LoadTrainingDataset:
    DESCRIPTION = "Load encoded training dataset (latents + conditioning) from disk for use in training."
    CATEGORY = "model/training"
    FUNCTION = "load"
    EXPERIMENTAL = True
    RETURN_TYPES = ("LATENT", "CONDITIONING")
    RETURN_NAMES = ("latents", "conditioning")
    OUTPUT_IS_LIST = (True, True)
    OUTPUT_TOOLTIPS = ("List of latent dicts", "List of conditioning lists")

    @classmethod
    def INPUT_TYPES(cls):
        found = running_services()
        names = ds.dataset_folders(_dataset_roots(found)) if found is not None else []
        return {"required": {"folder_name": (names, {"tooltip": "Saved dataset to load, from the datasets "
                                                                "directory."})}}

    def load(self, folder_name):
        roots = _dataset_roots(services())
        for root in roots:
            folder = _dataset_subfolder(root, folder_name)
            if folder.is_dir():
                return ds.load_shards(folder)
        raise ValueError(f"Dataset folder {folder_name!r} not found in: {', '.join(str(r) for r in roots)}")


NODE_CLASS_MAPPINGS = {
    "LoadImageDataSetFromFolder": LoadImageDataSetFromFolder,
    "LoadImageTextDataSetFromFolder": LoadImageTextDataSetFromFolder,
    "LoadImageSetFromFolderNode": LoadImageSetFromFolderNode,
    "LoadImageTextSetFromFolderNode": LoadImageTextSetFromFolderNode,
    "LoadImageSetNode": LoadImageSetNode,
    "SaveImageDataSetToFolder": SaveImageDataSetToFolder,
    "SaveImageTextDataSetToFolder": SaveImageTextDataSetToFolder,
    "ResizeImagesByShorterEdge": ResizeImagesByShorterEdge,
    "ResizeImagesByLongerEdge": ResizeImagesByLongerEdge,
    "CenterCropImages": CenterCropImages,
    "RandomCropImages": RandomCropImages,
    "NormalizeImages": NormalizeImages,
    "AdjustBrightness": AdjustBrightness,
    "AdjustContrast": AdjustContrast,
    "ShuffleDataset": ShuffleDataset,
    "ShuffleImageTextDataset": ShuffleImageTextDataset,
    "ResolutionBucket": ResolutionBucket,
    "MakeTrainingDataset": MakeTrainingDataset,
    "SaveTrainingDataset": SaveTrainingDataset,
    "LoadTrainingDataset": LoadTrainingDataset,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "LoadImageDataSetFromFolder": "Load Image (from Folder)",
    "LoadImageTextDataSetFromFolder": "Load Image-Text (from Folder)",
    "LoadImageSetFromFolderNode": "Load Image Dataset from Folder",
    "LoadImageTextSetFromFolderNode": "Load Image and Text Dataset from Folder",
    "SaveImageDataSetToFolder": "Save Image (to Folder) (DEPRECATED)",
    "SaveImageTextDataSetToFolder": "Save Image-Text (to Folder)",
    "ResizeImagesByShorterEdge": "Resize Images by Shorter Edge (DEPRECATED)",
    "ResizeImagesByLongerEdge": "Resize Images by Longer Edge (DEPRECATED)",
    "CenterCropImages": "Crop Image (Center)",
    "RandomCropImages": "Crop Image (Random)",
    "NormalizeImages": "Normalize Image Colors",
    "AdjustBrightness": "Adjust Brightness",
    "AdjustContrast": "Adjust Contrast",
    "ShuffleDataset": "Shuffle Images List",
    "ShuffleImageTextDataset": "Shuffle Pairs of Image-Text",
    "ResolutionBucket": "Resolution Bucket",
    "MakeTrainingDataset": "Make Training Dataset",
    "SaveTrainingDataset": "Save Training Dataset",
    "LoadTrainingDataset": "Load Training Dataset",
}
