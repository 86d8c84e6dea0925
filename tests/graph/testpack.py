"""A small node pack for executor tests: counting, lazy, list, expansion, slow and failing nodes.

Every node records its calls in ``CALLS`` (a Counter the tests reset), so tests can count how
many times each node type ran across prompts.
"""

from __future__ import annotations

import time
from collections import Counter

from graph.context import check_interrupted, report_progress

CALLS: Counter = Counter()


class Number:
    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0, "min": -100, "max": 100})}}

    def run(self, value):
        CALLS["Number"] += 1
        return (value,)


class Add:
    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("INT", {}), "b": ("INT", {"default": 0})}}

    def run(self, a, b):
        CALLS["Add"] += 1
        return (a + b,)


class Sink:
    """An output node that shows what it received."""

    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ()
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("*", {})}}

    def run(self, value):
        CALLS["Sink"] += 1
        return {"ui": {"values": [value]}}


class Choose:
    """Lazy: evaluates only the branch it picks."""

    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"pick_a": ("BOOLEAN", {"default": True}),
                             "a": ("INT", {"lazy": True}), "b": ("INT", {"lazy": True})}}

    def check_lazy_status(self, pick_a, a=None, b=None):
        return ["a"] if pick_a else ["b"]

    def run(self, pick_a, a=None, b=None):
        CALLS["Choose"] += 1
        return (a if pick_a else b,)


class Explode:
    """Outputs a list 0..count-1."""

    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)
    OUTPUT_IS_LIST = (True,)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"count": ("INT", {"default": 3, "min": 0, "max": 100})}}

    def run(self, count):
        CALLS["Explode"] += 1
        return (list(range(count)),)


class Total:
    """Takes a whole list at once."""

    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)
    INPUT_IS_LIST = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"values": ("INT", {})}}

    def run(self, values):
        CALLS["Total"] += 1
        return (sum(values),)


class Repeat:
    """Node expansion: builds a chain of `times` Add nodes at run time (a loop)."""

    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"start": ("INT", {}), "step": ("INT", {"default": 1}),
                             "times": ("INT", {"default": 3, "min": 0, "max": 1000})},
                "hidden": {"unique_id": "UNIQUE_ID"}}

    def run(self, start, step, times, unique_id):
        CALLS["Repeat"] += 1
        graph, last = {}, None
        for i in range(times):
            node_id = f"{unique_id}.add{i}"
            graph[node_id] = {"class_type": "Add", "inputs": {"a": [last, 0] if last else start, "b": step}}
            last = node_id
        return {"expand": graph, "result": ([last, 0] if last else start,)}


class Grow:
    """Node expansion without end: expands into `width` unused Number nodes and another Grow of
    twice the width, whose output is its own."""

    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {}), "width": ("INT", {"default": 1, "min": 1, "max": 2**62})},
                "hidden": {"unique_id": "UNIQUE_ID"}}

    def run(self, value, width, unique_id):
        CALLS["Grow"] += 1
        graph = {f"{unique_id}.n{i}": {"class_type": "Number", "inputs": {"value": 0}} for i in range(width)}
        graph[f"{unique_id}.g"] = {"class_type": "Grow", "inputs": {"value": value, "width": width * 2}}
        return {"expand": graph, "result": ([f"{unique_id}.g", 0],)}


class Slow:
    """A long node that reports progress and checks for interruption."""

    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {}), "seconds": ("FLOAT", {"default": 0.2})}}

    def run(self, value, seconds):
        CALLS["Slow"] += 1
        steps = max(20, int(seconds / 0.05))
        for i in range(steps):
            time.sleep(seconds / steps)
            report_progress(i + 1, steps)
            check_interrupted()
        return (value,)


class Fail:
    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {})}}

    def run(self, value):
        CALLS["Fail"] += 1
        raise ValueError(f"fail on purpose with {value}")


class Volatile:
    """IS_CHANGED returns NaN: it must re-run on every prompt."""

    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {})}}

    @classmethod
    def IS_CHANGED(cls, value):
        return float("nan")

    def run(self, value):
        CALLS["Volatile"] += 1
        return (value,)


class Versioned:
    """IS_CHANGED returns a version the test controls."""

    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)
    VERSION = {"value": 1}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {})}}

    @classmethod
    def IS_CHANGED(cls, value):
        return cls.VERSION["value"]

    def run(self, value):
        CALLS["Versioned"] += 1
        return (value,)


class Unstable:
    NOT_IDEMPOTENT = True
    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {})}}

    def run(self, value):
        CALLS["Unstable"] += 1
        return (value,)


class EvenOnly:
    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {})}}

    @classmethod
    def VALIDATE_INPUTS(cls, value):
        return True if value % 2 == 0 else f"{value} is odd"

    def run(self, value):
        return (value,)


class BrokenValidator(EvenOnly):
    @classmethod
    def VALIDATE_INPUTS(cls, value):
        raise RuntimeError("validator exploded")


class Pick:
    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"choice": (["red", "green", "blue"],), "ratio": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0})},
                "optional": {"text": ("STRING", {"default": ""})}}

    def run(self, choice, ratio, text=""):
        return (f"{choice}:{ratio}:{text}",)


class Image:
    """Emits an opaque IMAGE-typed value, to test type mismatches."""

    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        return ("image",)


NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in (
    Number, Add, Sink, Choose, Explode, Total, Repeat, Slow, Fail, Volatile, Versioned, Unstable,
    EvenOnly, BrokenValidator, Pick, Image, Grow)}
