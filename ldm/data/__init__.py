"""Captioned image datasets for training: procedural shape scenes and folders of images.

Every dataset here is a :class:`~ldm.data.captioned.CaptionedImages`: a length, an image by
index (``[3, H, W]`` float32 in 0..1) and its caption, the same answer every time.
"""

from ldm.data.captioned import CaptionedImages
from ldm.data.folder import ImageFolderDataset
from ldm.data.shapes import ShapesDataset

__all__ = ("CaptionedImages", "ImageFolderDataset", "ShapesDataset")
