"""``Types`` and ``InputImpl`` of ComfyUI's V3 API: the video value types.

``Types.VideoCodec``, ``Types.VideoContainer`` (string enums with ComfyUI's members and
``as_input()`` option lists, ``get_extension``) and ``Types.VideoComponents`` (images, frame rate,
audio, metadata) are plain data and real, so packs build their save-video schemas with them.
Weft has no VIDEO values: ``InputImpl.VideoFromFile`` and ``InputImpl.VideoFromComponents`` are
real, subclassable classes (of ``VideoInput``) that raise :class:`_weft_absent.NotInWeftError`
when constructed, so the node that makes a video fails with that error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Any, Optional

from _weft_absent import Feature, absent_class

VIDEO_VALUES = Feature("video values (VIDEO inputs, video files)", planned=False)
_MODULE = "comfy_api.latest"


class VideoCodec(str, Enum):
    AUTO = "auto"
    H264 = "h264"

    @classmethod
    def as_input(cls) -> list[str]:
        """The codec names, as a combo's options."""
        return [codec.value for codec in cls]


class VideoContainer(str, Enum):
    AUTO = "auto"
    MP4 = "mp4"

    @classmethod
    def as_input(cls) -> list[str]:
        """The container names, as a combo's options."""
        return [container.value for container in cls]

    @classmethod
    def get_extension(cls, value: "str | VideoContainer") -> str:
        """The file extension of a container ("auto" writes mp4)."""
        return "mp4" if cls(value) in (cls.AUTO, cls.MP4) else ""


@dataclass
class VideoComponents:
    """A video as its parts: frames (IMAGE batch), frame rate, optional audio and metadata."""

    images: Any
    frame_rate: Fraction
    audio: Optional[dict] = None
    metadata: Optional[dict] = None


VideoInput = absent_class(VIDEO_VALUES, _MODULE, "VideoInput")
VideoFromFile = absent_class(VIDEO_VALUES, _MODULE, "VideoFromFile", (VideoInput,))
VideoFromComponents = absent_class(VIDEO_VALUES, _MODULE, "VideoFromComponents", (VideoInput,))


class InputImpl:
    """ComfyUI's video value implementations (not in Weft: constructing one raises)."""

    VideoFromFile = VideoFromFile
    VideoFromComponents = VideoFromComponents


class Types:
    """ComfyUI's video data types."""

    VideoCodec = VideoCodec
    VideoContainer = VideoContainer
    VideoComponents = VideoComponents
