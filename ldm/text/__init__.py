"""The text side of the engine: CLIP tokenizer, prompt weighting, CLIP / OpenCLIP text encoders.

Public entry points (see docs/engine-contract.md):
- :func:`build_clip` — the CLIP handle of a single-file checkpoint;
- :func:`build_clip_from_files` — one from standalone text-encoder files (CLIPLoader);
- :func:`tiny_text_state_dict` — random tiny text encoders in a family's checkpoint layout;
- :class:`ClipHandle` — ``tokenize`` / ``encode_from_tokens`` / ``clone`` / ``set_last_layer``.
"""

from ldm.text.handle import ClipHandle, build_clip, build_clip_from_files, detect_text_encoder
from ldm.text.tiny import tiny_text_state_dict

__all__ = ["ClipHandle", "build_clip", "build_clip_from_files", "detect_text_encoder",
           "tiny_text_state_dict"]
