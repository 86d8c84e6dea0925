"""List nodes and loops: Create List, Get Item From List, the deprecated list mergers, and
Start Loop / End Loop with their internal nodes.

Names, inputs, outputs and categories are current ComfyUI's (``comfy_extras/nodes_toolkit.py``,
``nodes_dataset.py``'s list mergers, ``nodes_loop.py``). V3 dynamic inputs appear as the flat
keys ComfyUI's API prompt carries (``"inputs.input0"``, ``"mode.num_iterations"``, …).

How a loop runs here. ComfyUI's Start Loop expands the loop body once per iteration and parks
End Loop on its execution list until the copies finish. Weft's executor is demand-driven, so the
roles turn around: End Loop is what downstream nodes ask for, and its body inputs are lazy and
never requested (so the body as drawn never runs). End Loop expands into a copy of its Start Loop,
which evaluates Start Loop's inputs (the iteration count may come from a link) and expands the
body once per iteration — each copy reading a ``LoopIteration`` node where the drawn body reads
Start Loop, iteration k+1 waiting on iteration k, the carried value flowing from one to the next —
and a ``LoopResult`` that gathers ``output_value`` of the last or of every iteration. That result
flows back as End Loop's output. A Start Loop that runs where it was drawn (only an output node
inside the body would pull it) returns ExecutionBlockers, so the drawn body does nothing.
"""

from __future__ import annotations

import builtins
import hashlib
from typing import Any, Iterable

from graph.context import report_progress
from graph.executor import ExecutionBlocker
from graph.prompt import is_link, unwrap_literal
from nodes.utils import grown_inputs

# -- lists -------------------------------------------------------------------------------------------

CREATE_LIST_NAMES = [f"input{i}" for i in range(10)]  # Autogrow prefix "input", ComfyUI's default max 10


class CreateList:
    CATEGORY = "utilities"
    INPUT_IS_LIST = True
    RETURN_TYPES = ("*",)
    RETURN_NAMES = ("list",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        keys = [f"inputs.{name}" for name in CREATE_LIST_NAMES]
        return {"required": {keys[0]: ("*", {})}, "optional": {key: ("*", {}) for key in keys[1:]}}

    def run(self, **inputs):
        return ([item for values in grown_inputs(inputs, "inputs", CREATE_LIST_NAMES).values() for item in values],)


class GetItemFromList:
    """The item at ``index`` of the connected list. A single connected value that is itself a
    list (an ARRAY, say) is indexed instead."""

    CATEGORY = "utilities"
    INPUT_IS_LIST = True
    RETURN_TYPES = ("*",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"list": ("*", {}), "index": ("INT", {"default": 0})}}

    def run(self, list, index):
        items = list[0] if len(list) == 1 and isinstance(list[0], (tuple, builtins.list)) else list
        return (items[index[0]],)


class MergeImageLists:
    DESCRIPTION = "Concatenate multiple image lists into one."
    CATEGORY = "image/batch"
    EXPERIMENTAL = True
    DEPRECATED = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_IS_LIST = (True,)
    OUTPUT_TOOLTIPS = ("Processed images",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE", {"tooltip": "List of images to process."})}}

    def run(self, images):
        for image in images:
            if getattr(image, "ndim", None) != 4:
                raise ValueError(f"Expected 4D image tensor, got {type(image).__name__} "
                                 f"shape {getattr(image, 'shape', None)}")
        # ComfyUI's list mergers hand on single images: every batch is split into [1, H, W, C] items.
        return ([image[i:i + 1] for image in images for i in range(image.shape[0])],)


class MergeTextLists:
    DESCRIPTION = "Concatenate multiple text lists into one."
    CATEGORY = "text"
    EXPERIMENTAL = True
    DEPRECATED = True
    INPUT_IS_LIST = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("texts",)
    OUTPUT_IS_LIST = (True,)
    OUTPUT_TOOLTIPS = ("Processed texts",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"texts": ("STRING", {"tooltip": "List of texts to process."})}}

    def run(self, texts):
        return (list(texts),)


# -- loops: the graph around a loop --------------------------------------------------------------

START_OUTPUTS = ("iteration_index", "is_first", "is_last", "list_item", "current_iteration_value")
TERMINATION_NAMES = [f"termination{i}" for i in range(50)]
LOOP_INPUTS = ("output_value", "next_iteration_value", *(f"terminations.{n}" for n in TERMINATION_NAMES))


def _links(node: dict, names: Iterable[str] | None = None) -> list[str]:
    inputs = node.get("inputs", {})
    return [str(inputs[n][0]) for n in (inputs if names is None else names) if n in inputs and is_link(inputs[n])]


def _ancestors(dynprompt, roots: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        node_id = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        stack.extend(_links(dynprompt.get_node(node_id)))
    return seen


def loop_start_of(dynprompt, end_id: str) -> str:
    """The Start Loop an End Loop closes: of the Start Loops upstream of it, the innermost one
    not already closed by another End Loop upstream (loops nest like parentheses)."""
    upstream = _ancestors(dynprompt, _links(dynprompt.get_node(end_id)))
    starts = {n for n in upstream if dynprompt.get_node(n)["class_type"] == "StartLoop"}
    for inner_end in (n for n in upstream if dynprompt.get_node(n)["class_type"] == "EndLoop"):
        if inner_end != end_id:
            starts.discard(loop_start_of(dynprompt, inner_end))
    # the innermost start lies downstream of every other candidate
    innermost = [s for s in starts if starts - {s} <= _ancestors(dynprompt, [s])]
    if len(innermost) != 1:
        raise ValueError(f"End Loop {end_id}: expected one Start Loop upstream to close, found {sorted(starts)}")
    return innermost[0]


def loop_body(dynprompt, start_id: str, end_id: str) -> list[str]:
    """The nodes End Loop's loop inputs depend on that depend on Start Loop, in prompt order."""
    upstream = _ancestors(dynprompt, _links(dynprompt.get_node(end_id), LOOP_INPUTS)) - {start_id}
    depends: dict[str, bool] = {}

    def depends_on_start(node_id: str) -> bool:
        stack = [node_id]
        while stack:  # iterative post-order, so deep bodies do not hit the recursion limit
            current = stack[-1]
            pending = [s for s in _links(dynprompt.get_node(current)) if s != start_id and s not in depends]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            sources = _links(dynprompt.get_node(current))
            depends[current] = any(s == start_id or depends[s] for s in sources)
        return depends[node_id]

    return [n for n in dynprompt.all_ids() if n in upstream and depends_on_start(n)]


def _literal(value: Any) -> Any:
    """A value as an expansion input: lists wrapped so they cannot read as links."""
    return {"__value__": value} if isinstance(value, list) else value


def expand_loop(dynprompt, planner_id: str, start_id: str, end_id: str, values: list[int],
                list_items: list | None, reuse_cache: bool) -> tuple[dict, list]:
    """The iterations of a loop as an expansion graph, and the link to their gathered outputs.

    Each iteration has a LoopIteration node (what the body reads instead of Start Loop), a copy
    of every body node, and a LoopProgress; iteration k+1's LoopIteration takes iteration k's
    outputs as dependencies, so iterations run in order. Position flags are False on sockets the
    body does not read, so a change in loop length keeps the iterations' cache keys.
    """
    end_inputs = dynprompt.get_node(end_id)["inputs"]
    output_source = end_inputs.get("output_value")
    next_source = end_inputs.get("next_iteration_value")
    terminations = [end_inputs[f"terminations.{n}"] for n in TERMINATION_NAMES
                    if is_link(end_inputs.get(f"terminations.{n}"))]
    accumulate = bool(unwrap_literal(end_inputs.get("accumulate", False)))
    body = loop_body(dynprompt, start_id, end_id)
    used_sockets = {value[1] for node_id in (*body, end_id)
                    for value in dynprompt.get_node(node_id).get("inputs", {}).values()
                    if is_link(value) and str(value[0]) == start_id}
    graph: dict[str, dict] = {}
    carried = dynprompt.get_node(start_id)["inputs"].get("initial_iteration_value")
    dependencies: list = []
    progress = None
    result_inputs: dict[str, Any] = {"close_id": end_id}
    for position, value in enumerate(values):
        iteration_id = f"{planner_id}.iteration{position}"
        graph[iteration_id] = {"class_type": "LoopIteration", "inputs": {
            "iteration_index": value, "is_first": 1 in used_sockets and position == 0,
            "is_last": 2 in used_sockets and position == len(values) - 1,
            "list_item": _literal(list_items[position] if list_items is not None else None),
            "current_iteration_value": carried if is_link(carried) else _literal(carried),
            "reuse_cache": reuse_cache, **{f"dependency{i}": d for i, d in enumerate(dependencies)}}}
        copies = {node_id: f"{planner_id}.{position}.{node_id}" for node_id in body}

        def copied(source, iteration_id=iteration_id, copies=copies):
            if not is_link(source):
                return source
            if str(source[0]) == start_id:
                return [iteration_id, source[1]]
            if str(source[0]) in copies:
                return [copies[str(source[0])], source[1]]
            return source

        for node_id, copy_id in copies.items():
            original = dynprompt.get_node(node_id)
            graph[copy_id] = {"class_type": original["class_type"],
                              "inputs": {name: copied(v) for name, v in original.get("inputs", {}).items()}}
        dependencies = []
        if is_link(output_source):
            output = copied(output_source)
            if accumulate or position == len(values) - 1:
                result_inputs[f"output{position if accumulate else 0}"] = output
            dependencies.append(output)
        if is_link(next_source):
            carried = copied(next_source)
            dependencies.append(carried)
        dependencies.extend(copied(source) for source in terminations)
        progress_id = f"{planner_id}.progress{position}"
        graph[progress_id] = {"class_type": "LoopProgress", "inputs": {
            "start_id": start_id, "position": position + 1, "total": len(values),
            **{f"dependency{i}": d for i, d in enumerate(dependencies)},
            **({"previous_progress": progress} if progress is not None else {})}}
        progress = [progress_id, 0]
    if progress is not None:
        result_inputs["progress"] = progress
    result_inputs.update({f"dependency{i}": d for i, d in enumerate(dependencies)})
    result_id = f"{planner_id}.result"
    graph[result_id] = {"class_type": "LoopResult", "inputs": result_inputs}
    return graph, [result_id, 0]


# -- loops: the nodes ----------------------------------------------------------------------------

def _first(values: Any, default: Any = None) -> Any:
    """One input of an INPUT_IS_LIST node as a single value."""
    return values[0] if isinstance(values, list) and values else default


class StartLoop:
    CATEGORY = "utilities/looping"
    INPUT_IS_LIST = True
    RETURN_TYPES = ("INT", "BOOLEAN", "BOOLEAN", "*", "*")
    RETURN_NAMES = START_OUTPUTS
    OUTPUT_TOOLTIPS = (
        "Index of the current loop iteration.", "True during the first iteration of the loop.",
        "True during the last iteration of the loop.",
        "Current item from the list when using List mode. None in Simple and For modes.",
        "Loop-carried value for the current iteration: initial_iteration_value on the first iteration, then "
        "next_iteration_value from End Loop on each subsequent iteration.")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "mode": (["simple", "For", "List"], {"tooltip": "The loop iteration mode."}),
                "cache_iterations": ("BOOLEAN", {"default": False, "advanced": True, "tooltip":
                                                 "Reuse unchanged iteration results from previous executions. "
                                                 "Disable to execute every iteration again."})},
            "optional": {
                "mode.num_iterations": ("INT", {"default": 4, "min": 0,
                                                "tooltip": "Number of times to execute the loop body."}),
                "mode.start_iteration_index": ("INT", {"default": 0, "tooltip":
                                                       "Index of the first iteration when using For loop mode."}),
                "mode.max_iteration": ("INT", {"default": 4, "max": 0xffffffffffffffff, "tooltip":
                                               "The exclusive stopping value for iteration_index in For mode."}),
                "mode.step": ("INT", {"default": 1, "min": 1, "tooltip":
                                      "The index step size between each iteration when using For loop mode."}),
                "mode.list": ("*", {"tooltip": "List of items the loop iterates on. The loop body executes once "
                                               "per item."}),
                "parent_iteration": ("INT", {"forceInput": True, "tooltip":
                                             "Connect iteration_index from an outer Start Loop to nest this loop."}),
                "initial_iteration_value": ("*", {"tooltip": "Value exposed as current_iteration_value on the "
                                                             "first iteration."})},
            "hidden": {"dynprompt": "DYNPROMPT", "unique_id": "UNIQUE_ID"}}

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        return float("nan")

    def run(self, mode, cache_iterations, dynprompt, unique_id, **inputs):
        unique_id = _first(unique_id)
        dynprompt = _first(dynprompt)
        parent = dynprompt.parent_of(unique_id)
        if parent is None or dynprompt.get_node(parent)["class_type"] != "EndLoop":
            blocked = ExecutionBlocker(None)  # the body as drawn: only its End Loop runs it
            return (blocked,) * len(START_OUTPUTS)
        values, list_items = _iteration_values(_first(mode, "simple"), inputs)
        start_id = loop_start_of(dynprompt, parent)
        graph, result = expand_loop(dynprompt, unique_id, start_id, parent, values, list_items,
                                    bool(_first(cache_iterations, False)))
        # Outputs as ComfyUI's Start Loop gives them after expanding; the last carries the
        # gathered loop result back to End Loop, the only node that reads this copy.
        return {"result": (None, False, not values, None, result), "expand": graph}


def _iteration_values(mode: str, inputs: dict) -> tuple[list[int], list | None]:
    """The iteration indices (and List mode's items) of a Start Loop's mode inputs."""
    if mode == "simple":
        return list(range(_first(inputs.get("mode.num_iterations"), 4))), None
    if mode == "For":
        step = _first(inputs.get("mode.step"), 1)
        if step == 0:
            raise ValueError("Start Loop step must not be 0")
        return list(range(_first(inputs.get("mode.start_iteration_index"), 0),
                          _first(inputs.get("mode.max_iteration"), 4), step)), None
    if mode == "List":
        if "mode.list" not in inputs:
            raise ValueError("Start Loop in List mode needs a list connected")
        items = list(inputs["mode.list"])
        return list(range(len(items))), items
    raise ValueError(f"Unknown Start Loop mode {mode!r}")


class EndLoop:
    CATEGORY = "utilities/looping"
    INPUT_IS_LIST = True
    RETURN_TYPES = ("*",)
    RETURN_NAMES = ("outputs",)
    OUTPUT_IS_LIST = (True,)
    OUTPUT_TOOLTIPS = ("The final iteration's output_value, or values accumulated across iterations when "
                       "accumulate is enabled.",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        # The loop inputs are lazy and never requested: the iterations compute them (see module doc).
        termination = ("*", {"lazy": True, "tooltip": "Connect a preview or side-effect output that must execute "
                                                      "on every iteration. Its value is not returned."})
        return {
            "required": {"accumulate": ("BOOLEAN", {"default": False, "tooltip":
                                                    "Return output_value from every iteration when enabled; "
                                                    "otherwise return only the final iteration."})},
            "optional": {
                "output_value": ("*", {"lazy": True, "tooltip": "Value returned by End Loop. It returns the final "
                                                                "iteration or all iterations according to "
                                                                "accumulate."}),
                "next_iteration_value": ("*", {"lazy": True, "tooltip": "Value sent from End Loop back to Start "
                                                                        "Loop for the next iteration."}),
                **{f"terminations.{name}": termination for name in TERMINATION_NAMES}},
            "hidden": {"dynprompt": "DYNPROMPT", "unique_id": "UNIQUE_ID"}}

    def run(self, accumulate, dynprompt, unique_id, **loop_inputs):
        unique_id = _first(unique_id)
        dynprompt = _first(dynprompt)
        start_id = loop_start_of(dynprompt, unique_id)
        planner_id = f"{unique_id}.loop"
        planner = {"class_type": "StartLoop", "inputs": dict(dynprompt.get_node(start_id)["inputs"])}
        return {"result": ([planner_id, START_OUTPUTS.index("current_iteration_value")],),
                "expand": {planner_id: planner}}


class LoopIteration:
    """One iteration's view of Start Loop's outputs (made by loop expansion only)."""

    CATEGORY = "utilities/looping"
    INPUT_IS_LIST = True
    RETURN_TYPES = ("INT", "BOOLEAN", "BOOLEAN", "*", "*")
    OUTPUT_IS_LIST = (False, False, False, False, True)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"iteration_index": ("INT", {}), "is_first": ("BOOLEAN", {}), "is_last": ("BOOLEAN", {}),
                             "reuse_cache": ("BOOLEAN", {})},
                "optional": {"list_item": ("*", {}), "current_iteration_value": ("*", {})}}

    @classmethod
    def IS_CHANGED(cls, reuse_cache, list_item=None, **kwargs):
        if not _first(reuse_cache, reuse_cache):
            return float("nan")
        return _fingerprint(list_item)  # literal items may be tensors: their content, not their repr

    def run(self, iteration_index, is_first, is_last, reuse_cache, list_item=None, current_iteration_value=None,
            **dependencies):
        return (iteration_index[0], is_first[0], is_last[0], list_item[0] if list_item else None,
                current_iteration_value if current_iteration_value is not None else [None])


def _fingerprint(value: Any) -> str:
    digest = hashlib.sha256()
    if hasattr(value, "detach") and hasattr(value, "shape"):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.numpy().tobytes())
    else:
        digest.update(repr(value).encode())
    return digest.hexdigest()


class LoopProgress:
    """Reports ``position`` of ``total`` once an iteration is done (made by loop expansion only)."""

    CATEGORY = "utilities/looping"
    INPUT_IS_LIST = True
    OUTPUT_NODE = True
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"start_id": ("STRING", {}), "position": ("INT", {}), "total": ("INT", {})}}

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        return float("nan")

    def run(self, start_id, position, total, **dependencies):
        report_progress(position[0], total[0])
        return (position[0],)


class LoopResult:
    """Gathers the iterations' ``output_value`` lists, in order (made by loop expansion only).

    ComfyUI's LoopResult has no output and hands the lists to End Loop through its execution list;
    here they flow back through this output (see the module doc)."""

    CATEGORY = "utilities/looping"
    INPUT_IS_LIST = True
    OUTPUT_NODE = True
    RETURN_TYPES = ("*",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"close_id": ("STRING", {})}}

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        return float("nan")

    def run(self, close_id, **gathered):
        outputs = []
        while f"output{len(outputs)}" in gathered:
            outputs.append(gathered[f"output{len(outputs)}"])
        return ([value for output in outputs for value in output],)


_NODES = (CreateList, GetItemFromList, MergeImageLists, MergeTextLists, StartLoop, EndLoop, LoopIteration,
          LoopProgress, LoopResult)
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {
    "CreateList": "Create List", "GetItemFromList": "Get Item From List",
    "MergeImageLists": "Merge Image Lists (DEPRECATED)", "MergeTextLists": "Merge Text Lists (DEPRECATED)",
    "StartLoop": "Start Loop", "EndLoop": "End Loop",
}
