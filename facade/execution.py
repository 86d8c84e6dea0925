"""``execution``: the names node packs import from ComfyUI's execution.py, mapped onto Weft's
graph package (validation, list mapping, the job store through ``PromptQueue``).

Weft's executor (graph.executor) is its own: it never calls these functions, so a pack that
replaces one (``execution.validate_inputs = mine``) changes nothing in how Weft runs prompts;
its import still succeeds. Called directly, they behave as ComfyUI's do.

Not provided, and why:
- ``PromptExecutor.execute`` raises: prompts run in Weft's worker, queued through POST /prompt or
  ``PromptServer.instance.prompt_queue.put`` (the class exists, so packs that wrap it load).
- ``CacheSet`` and ``comfy_execution.caching``: Weft's output cache (graph.cache) keys results by
  input signature; ComfyUI's cache classes have no counterpart to wrap.
- ``execute``, ``recursive_execute`` and the rest of ComfyUI's scheduler: see graph.executor.
- ``map_node_over_list``: ``None``, as in ComfyUI (use ``_async_map_node_over_list``).
"""

from __future__ import annotations

import inspect
import logging
from enum import Enum
from typing import Any, NamedTuple

from _weft_binding import host
from api.prompt_queue import PromptQueue
from graph.context import Interrupted, call_with_services, check_interrupted
from graph.executor import ExecutionBlocker
from graph.jobs import SECRET_KEYS
from graph.node_call import map_over_lists
from graph.protocol import read_input_types
from graph.validation import make_error
from graph.validation import validate_prompt as _validate_prompt

from comfy_execution.graph import get_input_info
from comfy_execution.graph_utils import is_link

log = logging.getLogger(__name__)

__all__ = ["ExecutionResult", "CacheType", "CacheEntry", "DuplicateNodeError", "IsChangedCache", "PromptExecutor",
           "PromptQueue", "SENSITIVE_EXTRA_DATA_KEYS", "MAXIMUM_HISTORY_SIZE", "format_value", "full_type_name",
           "get_input_data", "get_output_data", "get_output_from_returns", "merge_result_data",
           "resolve_map_node_over_list_results", "validate_inputs", "validate_prompt"]

SENSITIVE_EXTRA_DATA_KEYS = SECRET_KEYS
MAXIMUM_HISTORY_SIZE = 10_000
map_node_over_list = None


class ExecutionResult(Enum):
    SUCCESS = 0
    FAILURE = 1
    PENDING = 2


class CacheType(Enum):
    CLASSIC = 0
    LRU = 1
    NONE = 2
    RAM_PRESSURE = 3


class CacheEntry(NamedTuple):
    ui: dict
    outputs: list


class DuplicateNodeError(Exception):
    pass


def _node_class(class_type: str) -> type:
    definition = host().registry.get(class_type)
    if definition is None:
        raise KeyError(f"node type {class_type!r} is not registered")
    return definition.node_class


def _node_of(dynprompt: Any, node_id: str) -> dict:
    """A node of Weft's DynamicPrompt (``get``) or of ComfyUI's (``get_node``)."""
    node = dynprompt.get_node(node_id) if hasattr(dynprompt, "get_node") else dynprompt.get(node_id)
    if node is None:
        raise KeyError(f"Node {node_id} not found")
    return node


def _original_prompt(dynprompt: Any) -> dict:
    if dynprompt is None:
        return {}
    return dynprompt.get_original_prompt() if hasattr(dynprompt, "get_original_prompt") else dynprompt.original


def _cached_outputs(execution_list: Any, source_id: str, node_id: str) -> list | None:
    """Outputs of ``source_id`` from a ComfyUI-style execution list (the shapes its versions used)."""
    if hasattr(execution_list, "get_output_cache"):
        cached = execution_list.get_output_cache(source_id, node_id)
    elif hasattr(execution_list, "get_cache"):
        cached = execution_list.get_cache(source_id, node_id)
    else:
        cached = execution_list.output_cache.get(source_id)
    return getattr(cached, "outputs", cached)


def get_input_data(inputs: dict, class_def: type, unique_id: str, execution_list: Any = None,
                   dynprompt: Any = None, extra_data: dict | None = None) -> tuple[dict, dict, dict]:
    """What a node is called with, each value as a list: ``(inputs, missing_keys, v3_data)``.

    Literals of declared inputs are wrapped in a list; a link takes the source's output list
    from ``execution_list`` (without one, or when the source has no result, the input is
    ``(None,)`` and listed in ``missing_keys``); hidden inputs are filled as the executor does."""
    extra_data = extra_data or {}
    valid_inputs = read_input_types(class_def)
    values: dict = {}
    missing: dict = {}
    for name, value in inputs.items():
        _, category, options = get_input_info(class_def, name, valid_inputs)
        if is_link(value) and not (options or {}).get("rawLink", False):
            outputs = _cached_outputs(execution_list, value[0], unique_id) if execution_list is not None else None
            if outputs is None or int(value[1]) >= len(outputs):
                values[name], missing[name] = (None,), True
            else:
                values[name] = outputs[int(value[1])]
        elif category is not None:
            values[name] = [value]
    hidden = {"PROMPT": _original_prompt(dynprompt), "DYNPROMPT": dynprompt,
              "EXTRA_PNGINFO": extra_data.get("extra_pnginfo"), "UNIQUE_ID": unique_id,
              "AUTH_TOKEN_COMFY_ORG": extra_data.get("auth_token_comfy_org"),
              "API_KEY_COMFY_ORG": extra_data.get("api_key_comfy_org")}
    for name, kind in (valid_inputs.get("hidden") or {}).items():
        if kind in hidden:
            values[name] = [hidden[kind]]
    return values, missing, {}


async def resolve_map_node_over_list_results(results: list) -> list:
    return [await r if inspect.isawaitable(r) else r for r in results]


async def _async_map_node_over_list(prompt_id: str, unique_id: str, obj: Any, input_data_all: dict, func: str,
                                    allow_interrupt: bool = False, execution_block_cb=None, pre_execute_cb=None,
                                    hidden_inputs=None, **_: Any) -> list:
    """Call ``obj.<func>`` once per list index (once with ``INPUT_IS_LIST``), as graph.node_call
    does; a call with an ExecutionBlocker among its inputs is not made and gives the blocker
    (passed through ``execution_block_cb``); ``pre_execute_cb(call_index)`` runs before each call."""
    function = getattr(obj, func)
    input_is_list = bool(getattr(obj, "INPUT_IS_LIST", False))
    call_index = iter(range(1 << 62))

    def call(**kwargs):
        index = next(call_index)
        if allow_interrupt:
            check_interrupted()
        items = (item for value in kwargs.values() for item in (value if input_is_list else (value,)))
        blocker = next((item for item in items if isinstance(item, ExecutionBlocker)), None)
        if blocker is not None:
            return execution_block_cb(blocker) if execution_block_cb is not None else blocker
        if pre_execute_cb is not None:
            pre_execute_cb(index)
        return function(**kwargs)

    return await resolve_map_node_over_list_results(map_over_lists(input_data_all, input_is_list, call))


def merge_result_data(results: list, obj: Any) -> list:
    """One list per output slot: OUTPUT_IS_LIST slots concatenate each call's list (a blocker is
    kept as one item), the others collect one item per call."""
    is_list = list(getattr(obj, "OUTPUT_IS_LIST", None) or [False] * len(results[0]))
    merged = []
    for slot in range(len(results[0])):
        if slot < len(is_list) and is_list[slot]:
            merged.append([item for r in results
                           for item in ([r[slot]] if isinstance(r[slot], ExecutionBlocker) else r[slot])])
        else:
            merged.append([r[slot] for r in results])
    return merged


def get_output_from_returns(return_values: list, obj: Any) -> tuple[list, dict, bool]:
    """``(outputs, ui, has_subgraph)`` from what the calls returned; with an expansion, outputs are
    ``[(graph, result)]`` per call."""
    n_outputs = len(getattr(obj, "RETURN_TYPES", ()))

    def as_result(value):
        return tuple([value] * n_outputs) if isinstance(value, ExecutionBlocker) else value

    results, subgraphs, uis, has_subgraph = [], [], [], False
    for returned in return_values:
        graph = None
        if isinstance(returned, dict):
            if "ui" in returned:
                uis.append(returned["ui"])
            if "expand" in returned:
                has_subgraph, graph = True, returned["expand"]
            elif "result" not in returned:
                continue
            returned = returned.get("result")
        result = as_result(returned)
        if graph is None:
            results.append(result)
        subgraphs.append((graph, result))
    ui = {key: [item for one in uis for item in one.get(key, [])] for key in uis[0]} if uis else {}
    if has_subgraph:
        return subgraphs, ui, True
    return (merge_result_data(results, obj) if results else []), ui, False


async def get_output_data(prompt_id: str, unique_id: str, obj: Any, input_data_all: dict, execution_block_cb=None,
                          pre_execute_cb=None, v3_data=None, **_: Any) -> tuple[list, dict, bool, bool]:
    """Run a node's FUNCTION over its inputs: ``(outputs, ui, has_subgraph, has_pending_tasks)``."""
    returned = await _async_map_node_over_list(prompt_id, unique_id, obj, input_data_all, obj.FUNCTION,
                                               allow_interrupt=True, execution_block_cb=execution_block_cb,
                                               pre_execute_cb=pre_execute_cb)
    return (*get_output_from_returns(returned, obj), False)


def format_value(x: Any) -> Any:
    return x if x is None or isinstance(x, (int, float, bool, str)) else str(x)


def full_type_name(klass: type) -> str:
    module = klass.__module__
    return klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"


class IsChangedCache:
    """A node's ``IS_CHANGED`` value for one prompt (False for nodes without it, NaN on error),
    computed from its literal inputs only."""

    def __init__(self, prompt_id: str, dynprompt: Any, outputs_cache: Any = None) -> None:
        self.prompt_id = prompt_id
        self.dynprompt = dynprompt
        self.outputs_cache = outputs_cache
        self.is_changed: dict = {}

    async def get(self, node_id: str) -> Any:
        if node_id not in self.is_changed:
            self.is_changed[node_id] = await self._compute(node_id)
        return self.is_changed[node_id]

    async def _compute(self, node_id: str) -> Any:
        node = _node_of(self.dynprompt, node_id)
        class_def = _node_class(node["class_type"])
        if not hasattr(class_def, "IS_CHANGED"):
            return False
        if "is_changed" in node:
            return node["is_changed"]
        inputs, _, _ = get_input_data(node.get("inputs", {}), class_def, node_id, None, self.dynprompt)
        try:
            values = await _async_map_node_over_list(self.prompt_id, node_id, class_def, inputs, "IS_CHANGED")
        except Exception as exc:
            log.warning("IS_CHANGED of node %s failed: %s", node_id, exc)
            return float("nan")
        return [None if isinstance(v, ExecutionBlocker) else v for v in values]


def _validate(prompt: dict, targets: list | None):
    services = host().services
    return call_with_services(services, _validate_prompt, prompt, host().registry, targets)


async def validate_inputs(prompt_id: str, prompt: dict, item: str, validated: dict) -> tuple[bool, list, str]:
    """``(valid, errors, item)`` for one node and its ancestors (graph.validation's rules); the
    ancestors' outcomes that failed go into ``validated`` too."""
    if item in validated:
        return validated[item]
    result = _validate(prompt, [item])
    if result.error is not None and not result.node_errors:
        validated[item] = (False, [result.error], item)
        return validated[item]
    for node_id, entry in result.node_errors.items():
        validated[node_id] = (False, entry["errors"], node_id)
    validated.setdefault(item, (True, [], item))
    return (result.ok, validated[item][1], item)


async def validate_prompt(prompt_id: str, prompt: dict, partial_execution_list: list | None = None
                          ) -> tuple[bool, dict | None, list, dict]:
    """``(valid, error, good_outputs, node_errors)`` as POST /prompt decides them; literal inputs
    of ``prompt`` are coerced in place to their declared types, as ComfyUI does."""
    if not isinstance(prompt, dict):
        return False, make_error("invalid_prompt", "The prompt must be an object of nodes"), [], {}
    result = _validate(prompt, partial_execution_list)
    for node_id, node in result.prompt.items():
        if isinstance(prompt.get(node_id), dict) and isinstance(prompt[node_id].get("inputs"), dict):
            prompt[node_id]["inputs"].update(node.get("inputs", {}))
    return result.ok, result.error, list(result.outputs), result.node_errors


class PromptExecutor:
    """ComfyUI's executor object. Weft runs prompts in its worker, so :meth:`execute` raises;
    the class exists so that packs that wrap its methods at import still load."""

    def __init__(self, server: Any = None, cache_type: Any = False, cache_args: dict | None = None,
                 **_: Any) -> None:
        self.server = server
        self.cache_type = cache_type
        self.cache_args = cache_args
        self.reset()

    def reset(self) -> None:
        self.status_messages: list = []
        self.success = True
        self.history_result: dict = {}

    def add_message(self, event: str, data: dict, broadcast: bool) -> None:
        self.status_messages.append((event, data))
        if self.server is not None and (broadcast or getattr(self.server, "client_id", None) is not None):
            self.server.send_sync(event, data, getattr(self.server, "client_id", None))

    def execute(self, prompt: dict, prompt_id: str, extra_data: dict | None = None, execute_outputs=()) -> None:
        raise NotImplementedError("Weft runs prompts in its worker: queue them through POST /prompt "
                                  "or PromptServer.instance.prompt_queue.put")

    async def execute_async(self, prompt: dict, prompt_id: str, extra_data: dict | None = None,
                            execute_outputs=()) -> None:
        self.execute(prompt, prompt_id, extra_data, execute_outputs)

    def handle_execution_error(self, prompt_id: str, prompt: dict, current_outputs, executed, error: dict,
                               ex: BaseException) -> None:
        """Record ComfyUI's ``execution_error`` / ``execution_interrupted`` message for a failed node
        (Weft's executor reports its own errors; packs wrap this at import)."""
        event = "execution_interrupted" if isinstance(ex, Interrupted) else "execution_error"
        data = {"prompt_id": prompt_id, "node_id": error.get("node_id"), "node_type": error.get("node_type"),
                "executed": list(executed)}
        if event == "execution_error":
            data.update({"exception_message": error.get("exception_message"),
                         "exception_type": error.get("exception_type"), "traceback": error.get("traceback"),
                         "current_inputs": error.get("current_inputs"), "current_outputs": list(current_outputs)})
        self.add_message(event, data, broadcast=event == "execution_interrupted")
