"""Logic and small utility nodes: math expressions, number conversion, switches, boolean logic,
custom combos, colours, seeds, resolutions and JSON text.

Names, inputs, outputs and categories are current ComfyUI's (its ``comfy_extras`` math, number
convert, logic, color, seed and resolution modules, and ``nodes_string.py``'s JSON nodes). Those
are V3 nodes; their dynamic inputs appear here as the flat keys ComfyUI's API prompt carries
(``"values.a"``, …) and MatchType sockets as ``*``. Math expressions are parsed with :mod:`ast`
and only the documented operators, names and functions are evaluated (see :class:`MathEvaluator`);
nothing is handed to ``eval``.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
import string
import sys
from typing import Any, Callable

from nodes.utils import grown_inputs

MAX_EXPONENT = 4000  # pow()'s cap, as ComfyUI's (** has its own guard, see _power)
MAX_POWER_OPERAND = 4_000_000  # simpleeval's guard on both sides of **
MAX_INTEGER_BITS = 100_000  # integer powers beyond this would only overflow the float output


def _variadic_sum(*args):
    """``sum(values)`` and ``sum(a, b, c)`` alike."""
    if len(args) == 1 and hasattr(args[0], "__iter__"):
        return sum(args[0])
    return sum(args)


def _check_integer_power(base, exponent) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if exponent * math.log2(abs(base)) > MAX_INTEGER_BITS:
            raise ValueError(f"{base} ** {exponent} is too large to compute")


def _capped_pow(base, exponent):
    if abs(exponent) > MAX_EXPONENT:
        raise ValueError(f"Exponent {exponent} exceeds maximum allowed ({MAX_EXPONENT})")
    _check_integer_power(base, exponent)
    return pow(base, exponent)


def _power(base, exponent):
    if abs(base) > MAX_POWER_OPERAND or abs(exponent) > MAX_POWER_OPERAND:
        raise ValueError(f"Refusing to evaluate {base} ** {exponent}")
    _check_integer_power(base, exponent)
    return base ** exponent


MATH_FUNCTIONS: dict[str, Callable] = {
    "sum": _variadic_sum, "min": min, "max": max, "abs": abs, "round": round, "pow": _capped_pow,
    "sqrt": math.sqrt, "ceil": math.ceil, "floor": math.floor, "log": math.log, "log2": math.log2,
    "log10": math.log10, "sin": math.sin, "cos": math.cos, "tan": math.tan, "int": int, "float": float,
}

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: _power,
           ast.BitXor: operator.xor, ast.BitOr: operator.or_, ast.BitAnd: operator.and_}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
            ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not}


class MathEvaluator:
    """Evaluates one expression over ``names`` with ``functions``: numbers, the names, arithmetic,
    comparisons, ``and``/``or``/``not``, ``x if c else y``, calls of the given functions and
    indexing (``values[0]``) — the expression language of ComfyUI's Math Expression (simpleeval's
    defaults). Attribute access, lambdas, literals of lists or strings, comprehensions and any
    other syntax are refused with a ``ValueError`` before anything runs."""

    def __init__(self, names: dict[str, Any], functions: dict[str, Callable]) -> None:
        self.names = names
        self.functions = functions

    def evaluate(self, expression: str) -> Any:
        try:
            tree = ast.parse(expression.strip(), mode="eval")
        except SyntaxError as exc:
            raise ValueError(f"Invalid expression {expression!r}: {exc.msg}") from None
        except (RecursionError, MemoryError):  # CPython's parser overflows its stack on deep nesting
            raise ValueError("Expression is nested too deeply") from None
        try:
            return self._eval(tree.body)
        except RecursionError:
            raise ValueError("Expression is nested too deeply") from None

    def _eval(self, node: ast.AST) -> Any:
        handler = getattr(self, f"_eval_{type(node).__name__}", None)
        if handler is None:
            raise ValueError(f"{type(node).__name__} is not allowed in a math expression")
        return handler(node)

    def _eval_Constant(self, node: ast.Constant) -> Any:
        if node.value is not None and not isinstance(node.value, (int, float)):
            raise ValueError(f"Only numbers are allowed as constants, got {node.value!r}")
        return node.value

    def _eval_Name(self, node: ast.Name) -> Any:
        if node.id not in self.names:
            raise ValueError(f"Name {node.id!r} is not defined")
        return self.names[node.id]

    def _eval_BinOp(self, node: ast.BinOp) -> Any:
        function = _BINARY.get(type(node.op))
        if function is None:
            raise ValueError(f"Operator {type(node.op).__name__} is not allowed")
        return function(self._eval(node.left), self._eval(node.right))

    def _eval_UnaryOp(self, node: ast.UnaryOp) -> Any:
        return _UNARY[type(node.op)](self._eval(node.operand))

    def _eval_BoolOp(self, node: ast.BoolOp) -> Any:
        result = self._eval(node.values[0])
        for value in node.values[1:]:
            if isinstance(node.op, ast.And) != bool(result):  # `and` stops at falsy, `or` at truthy
                return result
            result = self._eval(value)
        return result

    def _eval_Compare(self, node: ast.Compare) -> bool:
        left = self._eval(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = self._eval(comparator)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def _eval_IfExp(self, node: ast.IfExp) -> Any:
        return self._eval(node.body) if self._eval(node.test) else self._eval(node.orelse)

    def _eval_Call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.func.id not in self.functions:
            shown = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
            raise ValueError(f"Function {shown!r} is not allowed; available: {', '.join(self.functions)}")
        if any(isinstance(arg, ast.Starred) for arg in node.args) or any(k.arg is None for k in node.keywords):
            raise ValueError("Argument unpacking is not allowed")
        args = [self._eval(arg) for arg in node.args]
        kwargs = {k.arg: self._eval(k.value) for k in node.keywords}
        return self.functions[node.func.id](*args, **kwargs)

    def _eval_Subscript(self, node: ast.Subscript) -> Any:
        container = self._eval(node.value)
        index = node.slice
        if isinstance(index, ast.Slice):
            parts = (index.lower, index.upper, index.step)
            key = slice(*(None if part is None else self._eval(part) for part in parts))
        else:
            key = self._eval(index)
        return container[key]


class ComfyMathExpression:
    CATEGORY = "utilities"
    RETURN_TYPES = ("FLOAT", "INT", "BOOLEAN")
    RETURN_NAMES = ("FLOAT", "INT", "BOOL")
    FUNCTION = "run"
    NAMES = list(string.ascii_lowercase)

    @classmethod
    def INPUT_TYPES(cls):
        value = ("FLOAT,INT,BOOLEAN", {})  # a multi-type socket: no widget
        return {"required": {"expression": ("STRING", {"default": "a + b", "multiline": True})},
                "optional": {f"values.{name}": value for name in cls.NAMES}}

    def run(self, expression, **values):
        if not expression.strip():
            raise ValueError("Expression cannot be empty.")
        named = grown_inputs(values, "values", self.NAMES)
        result = MathEvaluator({**named, "values": list(named.values())}, MATH_FUNCTIONS).evaluate(expression)
        if not isinstance(result, (int, float)):  # bools are ints, so True/False pass as 1/0
            raise ValueError(f"Math Expression '{expression}' must evaluate to a numeric result, "
                             f"got {type(result).__name__}: {result!r}")
        try:
            as_float = float(result)
        except OverflowError:
            raise ValueError(f"Math Expression '{expression}' produced a result too large to represent "
                             f"as a float: {result}") from None
        if not math.isfinite(as_float):
            raise ValueError(f"Math Expression '{expression}' produced a non-finite result: {result}")
        return (as_float, int(result), bool(result))


class ComfyNumberConvert:
    CATEGORY = "math"
    RETURN_TYPES = ("FLOAT", "INT")
    RETURN_NAMES = ("FLOAT", "INT")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT,FLOAT,STRING,BOOLEAN", {"display_name": "value"})}}

    def run(self, value):
        if isinstance(value, str):
            return _parse_number(value)
        if not isinstance(value, (bool, int, float)):
            raise TypeError(f"Unsupported input type: {type(value).__name__}")
        as_float = float(value)
        if not math.isfinite(as_float):
            raise ValueError(f"Cannot convert non-finite value to number: {as_float}")
        return (as_float, int(value))  # bools give 1/0; floats are truncated


def _parse_number(text: str) -> tuple[float, int]:
    """A string as (float, int): the int exact for integer strings, truncated for decimals."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("Cannot convert empty string to number.")
    try:
        as_float = float(stripped)
    except ValueError:
        raise ValueError(f"Cannot convert string to number: {text!r}") from None
    if not math.isfinite(as_float):
        raise ValueError(f"Cannot convert non-finite value to number: {as_float}")
    try:
        return as_float, int(stripped)
    except ValueError:  # "3.7", "1e3": not integer literals
        return as_float, int(as_float)


class _Missing:
    """Stands for a switch input the prompt does not connect (``None`` means not yet evaluated)."""


MISSING = _Missing()


class ComfySwitchNode:
    CATEGORY = "utilities/logic"
    EXPERIMENTAL = True
    RETURN_TYPES = ("*",)
    RETURN_NAMES = ("output",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"switch": ("BOOLEAN", {})},
                "optional": {"on_false": ("*", {"lazy": True}), "on_true": ("*", {"lazy": True})}}

    def check_lazy_status(self, switch, on_false=MISSING, on_true=MISSING):
        if switch and on_true is None:
            return ["on_true"]
        if not switch and on_false is None:
            return ["on_false"]
        return []

    def run(self, switch, on_true=MISSING, on_false=MISSING):
        selected = on_true if switch else on_false
        return (None if selected is MISSING else selected,)


#: BranchNode's grown inputs. ComfyUI's published source for this node was not available to us;
#: its documentation names the Autogrow input ``autogrow`` (1 to 32 branches), so the prompt keys
#: are taken as the Autogrow prefix form ``autogrow.branch0`` … ``autogrow.branch31``. The names the
#: user gives the branches travel separately, in ``branch_names`` (index i names ``branch<i>``).
_BRANCH_KEYS = [f"autogrow.branch{i}" for i in range(32)]


class BranchNode:
    DESCRIPTION = ("Passes the branch chosen by name through to the output. Only that branch is "
                   "evaluated; the others may stay unconnected.")
    CATEGORY = "utilities/logic"
    RETURN_TYPES = ("*",)
    RETURN_NAMES = ("output",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"branch": ("STRING", {"default": ""}),
                             "branch_names": ("ARRAY", {})},
                "optional": {key: ("*", {"lazy": True}) for key in _BRANCH_KEYS}}

    @staticmethod
    def _selected_key(branch: str, branch_names: list) -> str:
        names = list(branch_names or [])
        if branch in names:
            return _BRANCH_KEYS[names.index(branch)]
        if f"autogrow.{branch}" in _BRANCH_KEYS:  # an unnamed branch is chosen by its own name
            return f"autogrow.{branch}"
        raise ValueError(f"Branch {branch!r} is not one of the connected branches {names}")

    def check_lazy_status(self, branch, branch_names, **branches):
        key = self._selected_key(branch, branch_names)
        return [key] if key in branches and branches[key] is None else []

    def run(self, branch, branch_names, **branches):
        key = self._selected_key(branch, branch_names)
        if key not in branches:
            raise ValueError(f"Branch {branch!r} is not connected")
        return (branches[key],)


_LOGIC_VALUES = [f"value{i}" for i in range(10)]  # Autogrow prefix "value", ComfyUI's default max 10


class _AutogrowLogic:
    CATEGORY = "utilities/logic"
    RETURN_TYPES = ("BOOLEAN",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        keys = [f"values.{name}" for name in _LOGIC_VALUES]
        return {"required": {keys[0]: ("*", {})}, "optional": {key: ("*", {}) for key in keys[1:]}}


class ComfyAndNode(_AutogrowLogic):
    DESCRIPTION = ("Logical AND operation. Returns true if all of the values are truthy. "
                   "Uses Python's rules for truthiness.")

    def run(self, **values):
        return (all(grown_inputs(values, "values", _LOGIC_VALUES).values()),)


class ComfyOrNode(_AutogrowLogic):
    DESCRIPTION = ("Logical OR operation. Returns true if any of the values are truthy. "
                   "Uses Python's rules for truthiness.")

    def run(self, **values):
        return (any(grown_inputs(values, "values", _LOGIC_VALUES).values()),)


class ComfyNotNode:
    DESCRIPTION = ("Logical NOT operation. Returns true if the value is falsy. "
                   "Uses Python's rules for truthiness.")
    CATEGORY = "utilities/logic"
    RETURN_TYPES = ("BOOLEAN",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("*", {})}}

    def run(self, value):
        return (not value,)


class CustomCombo:
    """A combo whose options the editor's user writes; ``choice`` is therefore not checked
    against a list (VALIDATE_INPUTS takes the inputs, which turns the built-in checks off)."""

    CATEGORY = "utilities"
    EXPERIMENTAL = True
    RETURN_TYPES = ("STRING", "INT")
    RETURN_NAMES = ("STRING", "INDEX")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"choice": ("COMBO", {"options": []})},
                "optional": {"index": ("INT", {"default": 0})}}

    @classmethod
    def VALIDATE_INPUTS(cls, choice, index=0, **kwargs):
        return True

    def run(self, choice, index=0):
        return (choice, index)


HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?")


class ColorToRGBInt:
    DESCRIPTION = "Return a color RGB integer value and hexadecimal representation."
    CATEGORY = "utilities"
    RETURN_TYPES = ("INT", "COLOR", "FLOAT")
    RETURN_NAMES = ("rgb_int", "hex", "alpha")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"color": ("COLOR", {"default": "#ffffff"})}}

    def run(self, color):
        if not HEX_COLOR.fullmatch(color):
            raise ValueError("Color must be in format #RRGGBB or #RRGGBBAA")
        alpha = int(color[7:9], 16) / 255.0 if len(color) == 9 else 1.0
        return (int(color[1:7], 16), color[:7], alpha)


class SeedNode:
    CATEGORY = "utilities"
    RETURN_TYPES = ("INT",)
    RETURN_NAMES = ("seed",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"min": 0, "max": sys.maxsize, "control_after_generate": "fixed"})}}

    def run(self, seed):
        return (seed,)


ASPECT_RATIOS = {
    "1:1 (Square)": (1, 1), "3:2 (Photo)": (3, 2), "4:3 (Standard)": (4, 3), "16:9 (Widescreen)": (16, 9),
    "21:9 (Ultrawide)": (21, 9), "2:3 (Portrait Photo)": (2, 3), "3:4 (Portrait Standard)": (3, 4),
    "9:16 (Portrait Widescreen)": (9, 16),
}


class ResolutionSelector:
    DESCRIPTION = ("Calculate width and height from aspect ratio and megapixel target. "
                   "Useful for setting up Empty Latent Image dimensions.")
    CATEGORY = "utilities"
    RETURN_TYPES = ("INT", "INT")
    RETURN_NAMES = ("width", "height")
    OUTPUT_TOOLTIPS = ("Calculated width in pixels multiplied by the selected multiple.",
                       "Calculated height in pixels multiplied by the selected multiple.")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "aspect_ratio": (list(ASPECT_RATIOS), {"default": "1:1 (Square)",
                                                   "tooltip": "The aspect ratio for the output dimensions."}),
            "megapixels": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 16.0, "step": 0.1,
                                     "tooltip": "Target total megapixels. 1.0 MP ≈ 1024x1024 for square."}),
            "multiple": ("INT", {"default": 8, "min": 8, "max": 128, "step": 4, "advanced": True,
                                 "tooltip": "Nearest multiple of the result to set the selected resolution to."})}}

    def run(self, aspect_ratio, megapixels, multiple):
        width_ratio, height_ratio = ASPECT_RATIOS[aspect_ratio]
        # The side lengths of a width_ratio x height_ratio rectangle with megapixels·2^20 pixels.
        scale = math.sqrt(megapixels * 1024 * 1024 / (width_ratio * height_ratio))
        return (round(width_ratio * scale / multiple) * multiple, round(height_ratio * scale / multiple) * multiple)


_INDENT = ("INT", {"default": 2, "min": 0, "max": 8,
                   "tooltip": "Spaces per indent level. 0 produces compact single-line string."})


def _dump_json(value: Any, indent: int) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent or None)


class ConvertDictionaryToString:
    CATEGORY = "text"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"dictionary": ("DICT",), "indent": _INDENT}}

    def run(self, dictionary, indent=2):
        return (_dump_json(dictionary, indent),)


class ConvertArrayToString:
    CATEGORY = "text"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"array": ("ARRAY",), "indent": _INDENT}}

    def run(self, array, indent=2):
        return (_dump_json(array, indent),)


class JsonExtractString:
    DESCRIPTION = "Extract a key's value from the first valid JSON object in the text, including Markdown code blocks."
    CATEGORY = "text"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"json_string": ("STRING", {"multiline": True}), "key": ("STRING", {"multiline": False})}}

    def run(self, json_string, key):
        decoder = json.JSONDecoder()
        # The first "{" from which a whole JSON object decodes; prose around it is ignored.
        for start in (m.start() for m in re.finditer(r"\{", json_string)):
            try:
                data, _ = decoder.raw_decode(json_string, start)
            except json.JSONDecodeError:
                continue
            value = data.get(key)
            return ("" if value is None else str(value),)
        return ("",)


_NODES = (ComfyMathExpression, ComfyNumberConvert, ComfySwitchNode, CustomCombo, ColorToRGBInt, ComfyAndNode,
          ComfyOrNode, ComfyNotNode, BranchNode, SeedNode, ResolutionSelector, ConvertArrayToString, ConvertDictionaryToString,
          JsonExtractString)
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {
    "ComfyMathExpression": "Math Expression", "ComfyNumberConvert": "Number Convert",
    "ComfySwitchNode": "If/Else Switch", "CustomCombo": "Custom Combo", "ColorToRGBInt": "Color Picker",
    "ComfyAndNode": "And", "ComfyOrNode": "Or", "ComfyNotNode": "Not", "BranchNode": "Branch", "SeedNode": "Seed",
    "ResolutionSelector": "Resolution Selector", "ConvertArrayToString": "Convert Array to String",
    "ConvertDictionaryToString": "Convert Dictionary to String", "JsonExtractString": "Extract Text from JSON",
}
