"""Utility nodes: primitives, string operations, regular expressions and PreviewAny.

Names, inputs and outputs are ComfyUI's (``comfy_extras`` primitive/string/preview nodes), so
workflows that use them run unchanged. None of them touches torch: they exercise the whole
graph core on their own.
"""

from __future__ import annotations

import json
import re
import sys

_MULTILINE = {"multiline": True}


def grown_inputs(kwargs: dict, name: str, names: list[str]) -> dict:
    """The values of a ComfyUI Autogrow input ``name`` from a node's keyword arguments, which
    carry them flat as the API prompt does (``"<name>.<grown name>"``): ``{grown name: value}``
    for the ones present, in the template's order ``names``."""
    return {grown: kwargs[f"{name}.{grown}"] for grown in names if f"{name}.{grown}" in kwargs}


def _regex_flags(case_insensitive: bool, multiline: bool, dotall: bool) -> int:
    flags = re.IGNORECASE if case_insensitive else 0
    flags |= re.MULTILINE if multiline else 0
    flags |= re.DOTALL if dotall else 0
    return flags


class _Primitive:
    """A constant of one widget type; subclasses set TYPE and the widget options."""

    CATEGORY = "utils/primitive"
    FUNCTION = "run"
    TYPE = "STRING"
    OPTIONS: dict = {}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": (cls.TYPE, dict(cls.OPTIONS))}}

    def run(self, value):
        return (value,)


class PrimitiveString(_Primitive):
    RETURN_TYPES = ("STRING",)


class PrimitiveStringMultiline(_Primitive):
    RETURN_TYPES = ("STRING",)
    OPTIONS = _MULTILINE


class PrimitiveInt(_Primitive):
    TYPE = "INT"
    RETURN_TYPES = ("INT",)
    OPTIONS = {"min": -sys.maxsize, "max": sys.maxsize, "control_after_generate": True}


class PrimitiveFloat(_Primitive):
    TYPE = "FLOAT"
    RETURN_TYPES = ("FLOAT",)
    OPTIONS = {"min": -sys.maxsize, "max": sys.maxsize}


class PrimitiveBoolean(_Primitive):
    TYPE = "BOOLEAN"
    RETURN_TYPES = ("BOOLEAN",)


class _StringNode:
    CATEGORY = "text"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)


class StringConcatenate(_StringNode):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"string_a": ("STRING", _MULTILINE), "string_b": ("STRING", _MULTILINE),
                             "delimiter": ("STRING", {"multiline": False, "default": ""})}}

    def run(self, string_a, string_b, delimiter):
        return (f"{string_a}{delimiter}{string_b}",)


class StringSubstring(_StringNode):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"string": ("STRING", _MULTILINE), "start": ("INT", {}), "end": ("INT", {})}}

    def run(self, string, start, end):
        return (string[start:end],)


class StringLength(_StringNode):
    RETURN_TYPES = ("INT",)
    RETURN_NAMES = ("length",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"string": ("STRING", _MULTILINE)}}

    def run(self, string):
        return (len(string),)


class CaseConverter(_StringNode):
    MODES = {"UPPERCASE": str.upper, "lowercase": str.lower, "Capitalize": str.capitalize,
             "Title Case": str.title}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"string": ("STRING", _MULTILINE), "mode": (list(cls.MODES),)}}

    def run(self, string, mode):
        return (self.MODES.get(mode, str)(string),)


class StringTrim(_StringNode):
    MODES = {"Both": str.strip, "Left": str.lstrip, "Right": str.rstrip}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"string": ("STRING", _MULTILINE), "mode": (list(cls.MODES),)}}

    def run(self, string, mode):
        return (self.MODES.get(mode, str)(string),)


class StringReplace(_StringNode):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"string": ("STRING", _MULTILINE), "find": ("STRING", _MULTILINE),
                             "replace": ("STRING", _MULTILINE)}}

    def run(self, string, find, replace):
        return (string.replace(find, replace),)


class StringContains(_StringNode):
    RETURN_TYPES = ("BOOLEAN",)
    RETURN_NAMES = ("contains",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"string": ("STRING", _MULTILINE), "substring": ("STRING", _MULTILINE),
                             "case_sensitive": ("BOOLEAN", {"default": True, "advanced": True})}}

    def run(self, string, substring, case_sensitive):
        if not case_sensitive:
            string, substring = string.lower(), substring.lower()
        return (substring in string,)


class StringCompare(_StringNode):
    RETURN_TYPES = ("BOOLEAN",)
    MODES = {"Starts With": str.startswith, "Ends With": str.endswith, "Equal": str.__eq__}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"string_a": ("STRING", _MULTILINE), "string_b": ("STRING", _MULTILINE),
                             "mode": (list(cls.MODES),), "case_sensitive": ("BOOLEAN", {"default": True, "advanced": True})}}

    def run(self, string_a, string_b, mode, case_sensitive):
        if not case_sensitive:
            string_a, string_b = string_a.lower(), string_b.lower()
        return (bool(self.MODES[mode](string_a, string_b)),)


_REGEX_FLAG_INPUTS = {"case_insensitive": ("BOOLEAN", {"default": True, "advanced": True}),
                      "multiline": ("BOOLEAN", {"default": False, "advanced": True}),
                      "dotall": ("BOOLEAN", {"default": False, "advanced": True})}


class RegexMatch(_StringNode):
    RETURN_TYPES = ("BOOLEAN",)
    RETURN_NAMES = ("matches",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"string": ("STRING", _MULTILINE), "regex_pattern": ("STRING", _MULTILINE),
                             **_REGEX_FLAG_INPUTS}}

    def run(self, string, regex_pattern, case_insensitive, multiline, dotall):
        try:
            found = re.search(regex_pattern, string, _regex_flags(case_insensitive, multiline, dotall))
        except re.error:
            return (False,)
        return (found is not None,)


class RegexExtract(_StringNode):
    MODES = ("First Match", "All Matches", "First Group", "All Groups")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"string": ("STRING", _MULTILINE), "regex_pattern": ("STRING", _MULTILINE),
                             "mode": (list(cls.MODES),), **_REGEX_FLAG_INPUTS,
                             "group_index": ("INT", {"default": 1, "min": 0, "max": 100, "advanced": True})}}

    def run(self, string, regex_pattern, mode, case_insensitive, multiline, dotall, group_index):
        flags = _regex_flags(case_insensitive, multiline, dotall)
        try:
            return (self._extract(re.compile(regex_pattern, flags), string, mode, group_index),)
        except (re.error, IndexError):
            return ("",)

    @staticmethod
    def _extract(pattern: re.Pattern, string: str, mode: str, group: int) -> str:
        if mode == "First Match":
            found = pattern.search(string)
            return found.group(0) if found else ""
        if mode == "All Matches":
            # Each match's whole text when the pattern has no groups, else its first group.
            return "\n".join(m.group(1 if pattern.groups else 0) for m in pattern.finditer(string))
        if mode == "First Group":
            found = pattern.search(string)
            return (found.group(group) or "") if found and pattern.groups >= group else ""
        if not pattern.groups or pattern.groups < group:  # "All Groups" needs a group to take
            return ""
        return "\n".join(m.group(group) or "" for m in pattern.finditer(string))


class RegexReplace(_StringNode):
    DESCRIPTION = "Find and replace text using regex patterns."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"string": ("STRING", _MULTILINE), "regex_pattern": ("STRING", _MULTILINE),
                             "replace": ("STRING", _MULTILINE)},
                "optional": {**_REGEX_FLAG_INPUTS,
                             "dotall": ("BOOLEAN", {**_REGEX_FLAG_INPUTS["dotall"][1], "tooltip": (
                                 "When enabled, the dot (.) character will match any character including "
                                 "newline characters. When disabled, dots won't match newlines.")}),
                             "count": ("INT", {"default": 0, "min": 0, "max": 100, "advanced": True, "tooltip": (
                                 "Maximum number of replacements to make. Set to 0 to replace all occurrences "
                                 "(default). Set to 1 to replace only the first match, 2 for the first two "
                                 "matches, etc.")})}}

    def run(self, string, regex_pattern, replace, case_insensitive=True, multiline=False, dotall=False, count=0):
        flags = _regex_flags(case_insensitive, multiline, dotall)
        return (re.sub(regex_pattern, replace, string, count=count, flags=flags),)


class PreviewAny:
    """Shows any value as text on the canvas."""

    CATEGORY = "utils"
    FUNCTION = "run"
    RETURN_TYPES = ()
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"source": ("*", {})}}

    def run(self, source=None):
        if isinstance(source, str):
            text = source
        elif isinstance(source, (bool, int, float)):
            text = str(source)
        else:
            try:
                text = json.dumps(source, indent=4)
            except (TypeError, ValueError):
                text = "source exists, but could not be serialized."
        return {"ui": {"text": (text,)}}


_NODES = (PrimitiveString, PrimitiveStringMultiline, PrimitiveInt, PrimitiveFloat, PrimitiveBoolean,
          StringConcatenate, StringSubstring, StringLength, CaseConverter, StringTrim, StringReplace,
          StringContains, StringCompare, RegexMatch, RegexExtract, RegexReplace, PreviewAny)
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {
    "PrimitiveString": "String", "PrimitiveStringMultiline": "String (Multiline)", "PrimitiveInt": "Int",
    "PrimitiveFloat": "Float", "PrimitiveBoolean": "Boolean", "StringConcatenate": "Concatenate Text",
    "StringSubstring": "Substring", "StringLength": "Text Length", "CaseConverter": "Convert Text Case",
    "StringTrim": "Trim Text", "StringReplace": "Replace Text", "StringContains": "Contains Text",
    "StringCompare": "Compare Text", "RegexMatch": "Match Text", "RegexExtract": "Extract Text",
    "RegexReplace": "Replace Text (Regex)",
    "PreviewAny": "Preview Any",
}
