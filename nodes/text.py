"""Text nodes: ComfyUI's dataset text transforms, Format Text and Save Text.

Names, inputs, outputs and categories are current ComfyUI's (``comfy_extras/nodes_dataset.py``'s
text processing nodes, ``nodes_string.py``'s StringFormat, ``nodes_text.py``'s SaveText). The
transforms take one text per call, so a list of texts maps over them as ComfyUI's list
execution does; the string operations they share with :mod:`nodes.utils` are called from there.
"""

from __future__ import annotations

import json
import re
import string

from graph.atomic import write_atomic
from graph.output_files import resolve_save_target
from nodes import utils
from nodes.services import services

_TEXTS = ("STRING", {"tooltip": "Text to process."})


class _TextTransform:
    CATEGORY = "text"
    EXPERIMENTAL = True
    DEPRECATED = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("texts",)
    OUTPUT_TOOLTIPS = ("Processed texts",)
    FUNCTION = "run"
    EXTRA_INPUTS: dict = {}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"texts": _TEXTS, **cls.EXTRA_INPUTS}}


class TextToLowercase(_TextTransform):
    DESCRIPTION = "Convert text to lowercase."

    def run(self, texts):
        return utils.CaseConverter().run(texts, "lowercase")


class TextToUppercase(_TextTransform):
    DESCRIPTION = "Convert text to uppercase."

    def run(self, texts):
        return utils.CaseConverter().run(texts, "UPPERCASE")


class TruncateText(_TextTransform):
    DESCRIPTION = "Truncate text to a maximum length."
    DEPRECATED = False
    EXTRA_INPUTS = {"max_length": ("INT", {"default": 77, "min": 1, "max": 10000, "tooltip": "Maximum text length."})}

    def run(self, texts, max_length):
        return utils.StringSubstring().run(texts, 0, max_length)


class AddTextPrefix(_TextTransform):
    DESCRIPTION = "Add a prefix to all texts."
    EXTRA_INPUTS = {"prefix": ("STRING", {"default": "", "tooltip": "Prefix to add."})}

    def run(self, texts, prefix):
        return utils.StringConcatenate().run(prefix, texts, "")


class AddTextSuffix(_TextTransform):
    DESCRIPTION = "Add a suffix to all texts."
    EXTRA_INPUTS = {"suffix": ("STRING", {"default": "", "tooltip": "Suffix to add."})}

    def run(self, texts, suffix):
        return utils.StringConcatenate().run(texts, suffix, "")


class ReplaceText(_TextTransform):
    DESCRIPTION = "Replace text in all texts."
    EXTRA_INPUTS = {"find": ("STRING", {"default": "", "tooltip": "Text to find."}),
                    "replace": ("STRING", {"default": "", "tooltip": "Text to replace with."})}

    def run(self, texts, find, replace):
        return utils.StringReplace().run(texts, find, replace)


class StripWhitespace(_TextTransform):
    DESCRIPTION = "Strip leading and trailing whitespace from all texts."

    def run(self, texts):
        return utils.StringTrim().run(texts, "Both")


class _SafeFormatter(string.Formatter):
    """``str.format`` without reaching attributes whose names start with ``_``: format fields
    can walk attributes (``{a.__class__.__init__.__globals__}``), and the values here are whatever
    a graph connects, models included."""

    def get_field(self, field_name, args, kwargs):
        if re.search(r"\._", field_name):
            raise ValueError(f"Format field {{{field_name}}} reaches a private attribute")
        return super().get_field(field_name, args, kwargs)


FORMAT_NAMES = list(string.ascii_lowercase)


class StringFormat:
    DESCRIPTION = "Same as Python's string format method. Supports all of Python's format options and features."
    CATEGORY = "text"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"f_string": ("STRING", {"default": "{a}", "multiline": True})},
                "optional": {f"values.{name}": ("*", {}) for name in FORMAT_NAMES}}

    def run(self, f_string, **values):
        return (_SafeFormatter().format(f_string, **utils.grown_inputs(values, "values", FORMAT_NAMES)),)


class SaveText:
    DESCRIPTION = "Save text content to a file in the output directory."
    CATEGORY = "text"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("text",)
    FUNCTION = "save"
    FORMATS = ["txt", "csv", "md", "json"]

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"forceInput": True}),
                             "filename_prefix": ("STRING", {"default": "ComfyUI"}),
                             "format": (cls.FORMATS, {"default": "txt"})}}

    def save(self, text, filename_prefix, format):
        target = resolve_save_target(services().folders.output, filename_prefix, 1, 1)
        data = _formatted(text, format).encode("utf-8")
        counter = target.counter
        while True:  # `<prefix>_00001.txt`: the first free number, never overwriting a file
            name = f"{target.filename}_{counter:05}.{format}"
            try:
                write_atomic(target.folder / name, data)
                break
            except FileExistsError:
                counter += 1
        ui = {"text": (text,), "files": [{"filename": name, "subfolder": target.subfolder, "type": "output"}]}
        return {"ui": ui, "result": (text,)}


def _formatted(text: str, format: str) -> str:
    """The file's content: JSON text pretty-printed (2 spaces) for "json" when it parses, else as is."""
    if format != "json":
        return text
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except json.JSONDecodeError:
        return text


_NODES = (TextToLowercase, TextToUppercase, TruncateText, AddTextPrefix, AddTextSuffix, ReplaceText,
          StripWhitespace, StringFormat, SaveText)
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {
    "TextToLowercase": "Convert Text to Lowercase (DEPRECATED)",
    "TextToUppercase": "Convert Text to Uppercase (DEPRECATED)", "TruncateText": "Truncate Text",
    "AddTextPrefix": "Add Text Prefix (DEPRECATED)", "AddTextSuffix": "Add Text Suffix (DEPRECATED)",
    "ReplaceText": "Replace Text (DEPRECATED)", "StripWhitespace": "Strip Whitespace (DEPRECATED)",
    "StringFormat": "Format Text", "SaveText": "Save Text",
}
