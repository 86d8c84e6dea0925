"""A test pack that builds graphs at run time with ``comfy_execution.graph_utils.GraphBuilder``
and blocks outputs with ``ExecutionBlocker``, the way loop and switch packs do."""

from comfy_execution.graph import ExecutionBlocker
from comfy_execution.graph_utils import GraphBuilder
from comfy_execution.utils import get_executing_context


class RepeatSuffix:
    """Appends ``suffix`` to ``text`` ``times`` times through a chain of StringConcatenate nodes."""

    CATEGORY = "tests/expand"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""}), "suffix": ("STRING", {"default": "!"}),
                             "times": ("INT", {"default": 2, "min": 0, "max": 100})}}

    def run(self, text, suffix, times):
        graph = GraphBuilder()
        current = text
        for _ in range(times):
            current = graph.node("StringConcatenate", string_a=current, string_b=suffix, delimiter="").out(0)
        return {"result": (current,), "expand": graph.finalize()}


class NestedRepeat:
    """Expands into two RepeatSuffix nodes, which expand in turn (ids of nested expansions)."""

    CATEGORY = "tests/expand"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""})}}

    def run(self, text):
        graph = GraphBuilder()
        first = graph.node("RepeatSuffix", text=text, suffix="a", times=2)
        second = graph.node("RepeatSuffix", text=first.out(0), suffix="b", times=1)
        return {"result": (second.out(0),), "expand": graph.finalize()}


class TwoBuilders:
    """Two builders in one call: their nodes must not collide."""

    CATEGORY = "tests/expand"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""})}}

    def run(self, text):
        left, right = GraphBuilder(), GraphBuilder()
        a = left.node("StringConcatenate", string_a=text, string_b="L", delimiter="")
        b = right.node("StringConcatenate", string_a=a.out(0), string_b="R", delimiter="")
        return {"result": (b.out(0),), "expand": {**left.finalize(), **right.finalize()}}


class BlockUnless:
    """Passes ``text`` on, or blocks what is downstream (with ``message``, if not empty)."""

    CATEGORY = "tests/expand"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""}), "allow": ("BOOLEAN", {"default": True}),
                             "message": ("STRING", {"default": ""})}}

    def run(self, text, allow, message):
        return (text if allow else ExecutionBlocker(message or None),)


class SplitBlocked:
    """A list output whose items starting with '-' are blocked."""

    CATEGORY = "tests/expand"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)
    OUTPUT_IS_LIST = (True,)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""})}}

    def run(self, text):
        return ([ExecutionBlocker(None) if part.startswith("-") else part for part in text.split()],)


class WhereAmI:
    """The running node's ids, as ``comfy_execution.utils.get_executing_context`` gives them."""

    CATEGORY = "tests/expand"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        context = get_executing_context()
        return (f"{context.prompt_id}/{context.node_id}/{context.list_index}",)


NODE_CLASS_MAPPINGS = {"RepeatSuffix": RepeatSuffix, "NestedRepeat": NestedRepeat, "TwoBuilders": TwoBuilders,
                       "BlockUnless": BlockUnless, "SplitBlocked": SplitBlocked, "WhereAmI": WhereAmI}
