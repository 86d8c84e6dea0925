"""The graph a generated image carries in its text chunks.

ComfyUI's SaveImage writes a ``prompt`` chunk (the API prompt that ran) and one chunk per key of
``extra_pnginfo`` — normally ``workflow``, the UI workflow. Reading the chunks themselves is
graph/png_metadata.py's job; this takes their text (name -> str) and parses the JSON.
"""

from __future__ import annotations

import json
from typing import Any

from .model import is_ui_workflow


def extract_workflow_from_png_text(chunks: dict) -> dict | None:
    """``{"workflow": <UI workflow or None>, "prompt": <API prompt or None>}`` parsed from the
    ``workflow`` and ``prompt`` text chunks; None when neither holds a graph. A chunk that is
    not valid JSON, or not of its kind, counts as absent (images from other tools carry other
    text). ``workflow`` is what an editor opens; ``prompt`` can be queued as it is."""
    if not isinstance(chunks, dict):
        return None
    workflow = _json_chunk(chunks.get("workflow"))
    prompt = _json_chunk(chunks.get("prompt"))
    found = {
        "workflow": workflow if is_ui_workflow(workflow) else None,
        "prompt": prompt if _is_api_prompt(prompt) else None,
    }
    return found if found["workflow"] is not None or found["prompt"] is not None else None


def _json_chunk(text: Any) -> Any:
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            text = bytes(text).decode("latin-1")
    if not isinstance(text, str):
        return None
    try:
        # Python's json module writes NaN / Infinity for such floats; ComfyUI's chunks can hold them.
        return json.loads(text)
    except ValueError:
        return None


def _is_api_prompt(data: Any) -> bool:
    return (isinstance(data, dict) and bool(data)
            and all(isinstance(v, dict) and isinstance(v.get("class_type"), str) for v in data.values()))
