"""``comfy_api.latest.ui``: what a V3 node returns as ``NodeOutput(ui=...)``.

``PreviewImage`` / ``PreviewMask`` write PNGs to the temp folder through Weft's own saving code
(``nodes.image.SaveImage``: numbered names, atomic writes, ``prompt`` / ``workflow`` text chunks
unless metadata is disabled) and give ComfyUI's ui dict, ``{"images": [{filename, subfolder,
type}], "animated": (False,)}``. ``PreviewText`` gives ``{"text": (value,)}``. Audio saving is not
provided.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

import torch

from nodes.image import SaveImage

from ._schema import _UIOutput
from ._types import FolderType


class SavedResult(dict):
    """One saved file as the editor's ``/view`` requests name it."""

    def __init__(self, filename: str, subfolder: str, type: FolderType | str):
        super().__init__(filename=filename, subfolder=subfolder, type=FolderType(type).value)

    @property
    def filename(self) -> str:
        return self["filename"]

    @property
    def subfolder(self) -> str:
        return self["subfolder"]

    @property
    def type(self) -> FolderType:
        return FolderType(self["type"])


class SavedImages(_UIOutput):
    def __init__(self, results: list[SavedResult], is_animated: bool = False):
        self.results = results
        self.is_animated = is_animated

    def as_dict(self) -> dict:
        return {"images": self.results} | ({"animated": (True,)} if self.is_animated else {})


class ImageSaveHelper:
    """Saving image batches for V3 nodes (PNG only)."""

    @staticmethod
    def save_images(images: torch.Tensor, filename_prefix: str, folder_type: FolderType | str, cls: Any,
                    compress_level: int = 4) -> list[SavedResult]:
        """Each image of ``images`` ``[B, H, W, C]`` as a numbered PNG in the folder; ``cls`` (the
        running node class) supplies the prompt and workflow written into the files."""
        folder_type = FolderType(folder_type)
        saver = SaveImage()
        saver.FOLDER_TYPE = folder_type.value
        saver.COMPRESS_LEVEL = compress_level
        hidden = getattr(cls, "hidden", None)
        ui = saver.save_images(images, filename_prefix, prompt=getattr(hidden, "prompt", None),
                               extra_pnginfo=getattr(hidden, "extra_pnginfo", None))["ui"]
        return [SavedResult(item["filename"], item["subfolder"], folder_type) for item in ui["images"]]

    @staticmethod
    def get_save_images_ui(images: torch.Tensor, filename_prefix: str, cls: Any,
                           compress_level: int = 4) -> SavedImages:
        return SavedImages(ImageSaveHelper.save_images(images, filename_prefix, FolderType.output, cls,
                                                       compress_level))


def _temp_prefix() -> str:
    return "ComfyUI_temp_" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(5))


class PreviewImage(_UIOutput):
    def __init__(self, image: torch.Tensor, animated: bool = False, cls: Any = None, **kwargs: Any):
        self.values = ImageSaveHelper.save_images(image, _temp_prefix(), FolderType.temp, cls, compress_level=1)
        self.animated = animated

    def as_dict(self) -> dict:
        return {"images": self.values, "animated": (self.animated,)}


class PreviewMask(PreviewImage):
    def __init__(self, mask: torch.Tensor, animated: bool = False, cls: Any = None, **kwargs: Any):
        # [B, H, W] (or [H, W]) -> grey [B, H, W, 3]
        preview = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])).movedim(1, -1).expand(-1, -1, -1, 3)
        super().__init__(preview, animated, cls, **kwargs)


class PreviewText(_UIOutput):
    def __init__(self, value: str, **kwargs: Any):
        self.value = value

    def as_dict(self) -> dict:
        return {"text": (self.value,)}


class PreviewVideo(_UIOutput):
    def __init__(self, values: list, **kwargs: Any):
        self.values = values

    def as_dict(self) -> dict:
        return {"images": self.values, "animated": (True,)}


class PreviewUI3D(_UIOutput):
    def __init__(self, model_file: Any, camera_info: Any, **kwargs: Any):
        self.model_file = model_file
        self.camera_info = camera_info

    def as_dict(self) -> dict:
        return {"result": [self.model_file, self.camera_info]}


__all__ = ["SavedResult", "SavedImages", "ImageSaveHelper", "PreviewImage", "PreviewMask", "PreviewText",
           "PreviewVideo", "PreviewUI3D"]
