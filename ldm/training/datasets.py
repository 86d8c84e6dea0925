"""Image and training-set operations behind ComfyUI's dataset nodes (``comfy_extras/nodes_dataset.py``
and the loaders of ``nodes_train.py``), with their arithmetic: images pass through 8-bit PIL
pictures (``x·255`` truncated, clipped) for resizing and cropping, seeds drive NumPy's legacy
generator (``seed mod 2³²−1``), and an encoded training set is stored as shards of
``{"latents": [...], "conditioning": [...]}`` written with ``torch.save`` and read back with
``weights_only`` loading.

Images are IMAGE tensors ``[B, H, W, C]`` in 0..1; one image of a list is ``[1, H, W, C]``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

log = logging.getLogger(__name__)

#: Files the folder loaders read as images (ComfyUI's list for them).
FOLDER_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
#: Files ``LoadImageSetNode`` accepts from the input folder.
IMAGE_SET_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".jpe", ".apng", ".tif", ".tiff")
RESIZE_METHODS = ["None", "Stretch", "Crop", "Pad"]
SHARD_PREFIX, SHARD_SUFFIX, METADATA_FILE = "shard_", ".pkl", "metadata.json"


def legacy_numpy_seed(seed: int) -> np.random.RandomState:
    """NumPy's legacy generator as ``np.random.seed(seed % (2**32 - 1))`` leaves it."""
    return np.random.RandomState(seed % (2**32 - 1))


# --------------------------------------------------------------------------- files

def load_rgb(path: str | os.PathLike) -> torch.Tensor:
    """The first frame of an image file as ``[1, H, W, 3]``: 32-bit integer pictures scaled by
    1/255 first, then RGB, then ``/255``."""
    with Image.open(path) as picture:
        if picture.mode == "I":
            picture = picture.point(lambda value: value * (1 / 255))
        pixels = np.array(picture.convert("RGB")).astype(np.float32) / 255.0
    return torch.from_numpy(pixels)[None]


def has_image_extension(name: str, extensions: Sequence[str] = FOLDER_IMAGE_EXTENSIONS) -> bool:
    return name.lower().endswith(tuple(extensions))


def folder_images(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, by name."""
    return [folder / name for name in sorted(os.listdir(folder)) if has_image_extension(name)]


def kohya_images(folder: Path) -> list[Path]:
    """Images of ``folder`` and of its sub-folders in kohya-ss's ``<repeats>_<name>`` layout, whose
    images are listed ``repeats`` times (once when the name does not start with a number)."""
    found: list[Path] = []
    for name in sorted(os.listdir(folder)):
        path = folder / name
        if has_image_extension(name):
            found.append(path)
        elif path.is_dir():
            head = name.split("_")[0]
            repeats = int(head) if head.isdigit() else 1
            found.extend(folder_images(path) * repeats)
    return found


def caption_for(image: Path) -> str:
    """The text of the ``.txt`` file beside an image, stripped; "" when there is none."""
    caption = image.with_suffix(".txt")
    return caption.read_text(encoding="utf-8").strip() if caption.is_file() else ""


def load_same_size(paths: Sequence[Path], method: str = "None", width: int | None = None,
                   height: int | None = None) -> torch.Tensor:
    """Images as one batch ``[N, H, W, 3]`` of the first image's size (or ``width`` × ``height``
    where given): others are stretched (Lanczos; "Pad" does the same, as in ComfyUI), cropped
    from the top-left, or refused ("None")."""
    if not paths:
        raise ValueError("No valid images found in input")
    if method not in RESIZE_METHODS:
        raise ValueError(f"resize_method must be one of {RESIZE_METHODS}, got {method!r}")
    batch = []
    for path in paths:
        with Image.open(path) as opened:
            picture = opened.point(lambda value: value * (1 / 255)) if opened.mode == "I" else opened
            picture = picture.convert("RGB")
        if width is None and height is None:
            width, height = picture.size
        width = picture.size[0] if width is None else width
        height = picture.size[1] if height is None else height
        if picture.size != (width, height):
            if method in ("Stretch", "Pad"):
                picture = picture.resize((width, height), Image.Resampling.LANCZOS)
            elif method == "Crop":
                picture = picture.crop((0, 0, width, height))
            else:
                raise ValueError("Your input image size does not match the first image in the dataset. Either "
                                 "select a valid resize method or use the same size for all images.")
        batch.append(torch.from_numpy(np.array(picture).astype(np.float32) / 255.0)[None])
    return torch.cat(batch)


def split_frames(images: Sequence[torch.Tensor] | torch.Tensor) -> list[torch.Tensor]:
    """Batches as a flat list of ``[H, W, C]`` frames."""
    if isinstance(images, torch.Tensor):
        images = [images]
    return [frame for image in images for frame in (image if image.ndim == 4 else [image])]


def to_8bit_picture(image: torch.Tensor) -> Image.Image:
    """``[1, H, W, C]`` or ``[H, W, C]`` as a PIL picture (``x·255`` truncated, clipped)."""
    if image.ndim == 4:
        image = image[0]
    return Image.fromarray((image.cpu().numpy() * 255.0).clip(0, 255).astype(np.uint8))


def from_picture(picture: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(picture).astype(np.float32) / 255.0)[None]


# --------------------------------------------------------------------------- per-image operations

def resize_shorter_edge(image: torch.Tensor, shorter_edge: int) -> torch.Tensor:
    picture = to_8bit_picture(image)
    w, h = picture.size
    size = (shorter_edge, int(h * (shorter_edge / w))) if w < h else (int(w * (shorter_edge / h)), shorter_edge)
    return from_picture(picture.resize(size, Image.Resampling.LANCZOS))


def resize_longer_edge(image: torch.Tensor, longer_edge: int) -> torch.Tensor:
    picture = to_8bit_picture(image)
    w, h = picture.size
    size = (longer_edge, int(h * (longer_edge / w))) if w > h else (int(w * (longer_edge / h)), longer_edge)
    return from_picture(picture.resize(size, Image.Resampling.LANCZOS))


def _crop(picture: Image.Image, left: int, top: int, width: int, height: int) -> torch.Tensor:
    return from_picture(picture.crop((left, top, min(picture.width, left + width), min(picture.height, top + height))))


def center_crop(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The centred ``width`` × ``height`` window (the whole side where the image is smaller)."""
    picture = to_8bit_picture(image)
    return _crop(picture, max(0, (picture.width - width) // 2), max(0, (picture.height - height) // 2), width, height)


def random_crop(image: torch.Tensor, width: int, height: int, seed: int) -> torch.Tensor:
    """A ``width`` × ``height`` window at a position drawn from ``seed`` (left, then top)."""
    picture = to_8bit_picture(image)
    generator = legacy_numpy_seed(seed)
    max_left, max_top = max(0, picture.width - width), max(0, picture.height - height)
    left = generator.randint(0, max_left + 1) if max_left > 0 else 0
    top = generator.randint(0, max_top + 1) if max_top > 0 else 0
    return _crop(picture, left, top, width, height)


def normalize(image: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return (image - mean) / std


def adjust_brightness(image: torch.Tensor, factor: float) -> torch.Tensor:
    return (image * factor).clamp(0.0, 1.0)


def adjust_contrast(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Contrast about mid-grey 0.5."""
    return ((image - 0.5) * factor + 0.5).clamp(0.0, 1.0)


def seeded_permutation(count: int, seed: int) -> list[int]:
    return legacy_numpy_seed(seed).permutation(count).tolist()


# --------------------------------------------------------------------------- training sets

def resolution_buckets(latents: Sequence[dict], conditioning: Sequence[list]) -> tuple[list[dict], list[list]]:
    """Latents (and the conditioning entry of each batch item) grouped by ``(h, w)``, in the order
    the sizes first appear; each bucket's latents stacked into one batch."""
    if len(latents) != len(conditioning):
        raise ValueError(f"Number of latents ({len(latents)}) does not match number of conditions "
                         f"({len(conditioning)}).")
    buckets: dict[tuple[int, int], tuple[list, list]] = {}
    for latent, cond in zip(latents, conditioning):
        for index, sample in enumerate(latent["samples"]):
            samples, conds = buckets.setdefault(tuple(sample.shape[-2:]), ([], []))
            samples.append(sample)
            conds.append(cond[index])
    return ([{"samples": torch.stack(samples)} for samples, _ in buckets.values()],
            [conds for _, conds in buckets.values()])


def dataset_folders(roots: Sequence[Path]) -> list[str]:
    """Relative names (``/``-joined) of the saved training sets under ``roots``: folders below a
    root holding a ``metadata.json`` or a ``.safetensors`` file, not looked into further.
    Symbolic links are followed, each real folder visited once (so link loops end)."""
    found: set[str] = set()
    for root in roots:
        if not root.is_dir():
            continue
        root = root.absolute()
        seen: set[tuple[int, int]] = set()
        for current, subfolders, files in os.walk(root, followlinks=True):
            try:
                status = os.stat(current)
            except OSError as error:
                log.warning("dataset folder %s skipped: %s", current, error)
                subfolders[:] = []
                continue
            if (status.st_dev, status.st_ino) in seen:
                subfolders[:] = []
                continue
            seen.add((status.st_dev, status.st_ino))
            if Path(current) != root and (METADATA_FILE in files or any(f.endswith(".safetensors") for f in files)):
                found.add(Path(current).relative_to(root).as_posix())
                subfolders[:] = []
    return sorted(found)


def save_shards(folder: Path, latents: Sequence[dict], conditioning: Sequence[list], shard_size: int) -> int:
    """Write ``shard_0000.pkl``, … of ``shard_size`` samples each and ``metadata.json``; returns
    the shard count."""
    if len(latents) != len(conditioning):
        raise ValueError(f"Number of latents ({len(latents)}) does not match number of conditions "
                         f"({len(conditioning)}).")
    folder.mkdir(parents=True, exist_ok=True)
    count = len(latents)
    shards = (count + shard_size - 1) // shard_size
    for shard in range(shards):
        part = slice(shard * shard_size, min((shard + 1) * shard_size, count))
        torch.save({"latents": list(latents[part]), "conditioning": list(conditioning[part])},
                   folder / f"{SHARD_PREFIX}{shard:04d}{SHARD_SUFFIX}")
    metadata = {"num_samples": count, "num_shards": shards, "shard_size": shard_size}
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
    return shards


def load_shards(folder: Path) -> tuple[list[dict], list[list]]:
    """Every shard of a saved training set, in name order (tensors and plain data only)."""
    names = sorted(n for n in os.listdir(folder) if n.startswith(SHARD_PREFIX) and n.endswith(SHARD_SUFFIX))
    if not names:
        raise ValueError(f"No shard files found in {folder}")
    latents: list[dict] = []
    conditioning: list[list] = []
    for name in names:
        shard = torch.load(folder / name, weights_only=True)
        latents.extend(shard["latents"])
        conditioning.extend(shard["conditioning"])
    return latents, conditioning
