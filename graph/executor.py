"""The executor: runs the ancestors of a prompt's output nodes, each once, in dependency order.

Scheduling is a demand-driven walk from the outputs with an explicit stack: a node runs when the
results of its (non-lazy, or lazily requested) inputs exist. Results are reused across prompts
through :class:`graph.cache.OutputCache` by input signature. ``check_lazy_status`` may request
more inputs (the node is revisited once they exist); a node may return ``{"expand": graph,
"result": ...}`` to add nodes at run time (loops are built this way; at most
``max_expanded_nodes`` per run). An exception fails only its prompt; interrupts are checked
before every node and whenever a node reports progress.

Events go to ``emit(event, data)`` with ComfyUI's message shapes.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .cache import OutputCache
from .context import ExecutionContext, Interrupted, InterruptFlag, services_context, use_context
from .node_call import NodeResult, map_over_lists, merge_results
from .prompt import DynamicPrompt, is_link, unwrap_literal
from .protocol import NODE_FAILURES
from .registry import NodeRegistry
from .signature import SignatureBuilder

Emit = Callable[[str, dict], None]

#: Nodes that expansions may add to one run (the server's ``--max-prompt-nodes`` default): a node
#: that expands without end fails its job instead of filling the memory.
MAX_EXPANDED_NODES = 20_000


class ExecutionBlocker:
    """Returned as an output value to stop the nodes that consume it.

    A node call that receives one (any input; with ``INPUT_IS_LIST``, any item of a list) is not
    made: each of its outputs becomes the blocker, so everything downstream is blocked too. With a
    message, an output node that receives it fails the prompt with that message; with ``None`` it
    is skipped silently. ComfyUI's ``comfy_execution.graph.ExecutionBlocker`` is this class.
    """

    def __init__(self, message: str | None) -> None:
        self.message = message


def _call_blocker(values, input_is_list: bool) -> ExecutionBlocker | None:
    """The blocker among one call's input values (whole lists with ``INPUT_IS_LIST``), if any."""
    for value in values:
        for item in (value if input_is_list else (value,)):
            if isinstance(item, ExecutionBlocker):
                return item
    return None


def _blocked_calls(inputs: dict[str, list], input_is_list: bool) -> list[ExecutionBlocker | None]:
    """Per call of a node (see graph.node_call.map_over_lists): the blocker that stops it, or None."""
    if input_is_list or not inputs:
        return [_call_blocker(inputs.values(), True)]
    longest = max(len(v) for v in inputs.values())
    return [_call_blocker([values[min(i, len(values) - 1)] for values in inputs.values() if values], False)
            for i in range(longest)]


class ExecutionFailure(Exception):
    """A failure the executor raises itself (cycles, missing nodes, bad expansions)."""


@dataclass
class ExecutionOutcome:
    status: str  # "success" | "error" | "interrupted"
    outputs: dict = field(default_factory=dict)  # node id -> ui dict of output nodes
    messages: list = field(default_factory=list)  # [event, data] pairs kept in the history
    meta: dict = field(default_factory=dict)
    executed: list = field(default_factory=list)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _format_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) < 1000 else value[:1000] + "…"
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{type(value).__name__}(shape={list(shape)}, dtype={getattr(value, 'dtype', '?')})"
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "…"


class _Run:
    """The state of one prompt's execution."""

    def __init__(self, executor: Executor, prompt_id: str, prompt: dict, extra_data: dict, emit: Emit) -> None:
        self.executor = executor
        self._emit = emit
        self.prompt_id = prompt_id
        self.prompt = prompt
        self.extra_data = extra_data
        self.dynprompt = DynamicPrompt(prompt)
        self.signatures = SignatureBuilder(executor.registry, self.dynprompt)
        self.results: dict[str, list[list]] = {}
        self.ui: dict[str, dict] = {}
        self.executed: list[str] = []
        self.requested_lazy: dict[str, set[str]] = {}
        self.expansions: dict[str, tuple] = {}
        self.expanded_nodes = 0
        self._specs: dict[str, dict] = {}
        self.outcome = ExecutionOutcome("success")

    # -- events -----------------------------------------------------------------------------------
    def emit(self, event: str, data: dict, *, keep: bool = False) -> None:
        if keep:
            self.outcome.messages.append([event, data])
        self._emit(event, data)

    # -- the walk -----------------------------------------------------------------------------------
    def run(self, outputs: list[str]) -> ExecutionOutcome:
        self.emit("execution_start", {"prompt_id": self.prompt_id, "timestamp": _now_ms()}, keep=True)
        cached = [nid for nid in self.prompt if self._cached(nid) is not None]
        self.emit("execution_cached", {"nodes": cached, "prompt_id": self.prompt_id, "timestamp": _now_ms()},
                  keep=True)
        current = None
        try:
            stack: list[str] = list(reversed(outputs))
            # Nodes waiting for their sources: the path of the walk. A source on it is a cycle; a
            # source merely pushed (for another node) and not yet visited is not.
            waiting: set[str] = set()
            while stack:
                current = stack[-1]
                if current in self.results:
                    stack.pop()
                    waiting.discard(current)
                    continue
                if self._use_cache(current):
                    stack.pop()
                    waiting.discard(current)
                    continue
                missing = [s for s in self._needed_sources(current) if s not in self.results]
                if missing:
                    for source in missing:
                        if source in waiting or source == current:
                            raise ExecutionFailure(f"Dependency cycle detected at node {source}")
                    waiting.add(current)
                    stack.extend(missing)
                    continue
                self.executor.interrupt.raise_if_set()
                more = self._execute(current)
                if more:
                    waiting.add(current)
                    stack.extend(s for s in more if s not in self.results)
                    continue
                stack.pop()
                waiting.discard(current)
        except Interrupted:
            self.outcome.status = "interrupted"
            self.emit("execution_interrupted", {
                "prompt_id": self.prompt_id, "node_id": current, "node_type": self._class_of(current),
                "executed": list(self.executed), "timestamp": _now_ms()}, keep=True)
        except NODE_FAILURES as exc:  # a node's SystemExit fails its job, not the process
            self._fail(current, exc)
        else:
            self.emit("execution_success", {"prompt_id": self.prompt_id, "timestamp": _now_ms()}, keep=True)
        finally:
            self.emit("executing", {"node": None, "display_node": None, "prompt_id": self.prompt_id})
        self.outcome.outputs = dict(self.ui)
        self.outcome.executed = list(self.executed)
        return self.outcome

    def specs(self, definition) -> dict:
        """Input specs per class, read once per run (INPUT_TYPES may list folders)."""
        if definition.name not in self._specs:
            self._specs[definition.name] = definition.inputs()
        return self._specs[definition.name]

    def _class_of(self, node_id: str | None) -> str | None:
        node = self.dynprompt.get(node_id) if node_id is not None else None
        return node.get("class_type") if node else None

    def _cached(self, node_id: str):
        if self.dynprompt.get(node_id) is None:
            return None
        return self.executor.cache.get(self.signatures.signature(node_id))

    def _use_cache(self, node_id: str) -> bool:
        entry = self._cached(node_id)
        if entry is None:
            return False
        self.results[node_id] = entry.outputs
        if entry.ui is not None:
            self._record_ui(node_id, entry.ui)
        return True

    def _needed_sources(self, node_id: str) -> list[str]:
        """Sources this node cannot run without: non-lazy links, requested lazy links, expansion links."""
        node = self.dynprompt.get(node_id)
        if node is None:
            raise ExecutionFailure(f"Node {node_id} is not in the prompt")
        if node_id in self.expansions:
            return [str(v[0]) for v in self.expansions[node_id] if is_link(v)]
        definition = self.executor.registry.get(node["class_type"])
        if definition is None:
            raise ExecutionFailure(f"Node type {node['class_type']} is not registered")
        specs = self.specs(definition)
        requested = self.requested_lazy.get(node_id, set())
        sources = []
        for name, value in node.get("inputs", {}).items():
            if not is_link(value):
                continue
            spec = specs.get(name)
            if spec is not None and spec.lazy and name not in requested:
                continue
            if spec is not None and spec.raw_link:
                continue
            sources.append(str(value[0]))
        return sources

    # -- running one node ----------------------------------------------------------------------------
    def _gather_inputs(self, node_id: str, node: dict, definition) -> dict[str, list]:
        specs = self.specs(definition)
        inputs: dict[str, list] = {}
        for name, value in node.get("inputs", {}).items():
            spec = specs.get(name)
            if is_link(value) and not (spec is not None and spec.raw_link):
                source = self.results.get(str(value[0]))
                inputs[name] = source[value[1]] if source is not None else [None]
            elif spec is not None and spec.category != "hidden":
                inputs[name] = [unwrap_literal(value)]
        hidden_values = {"PROMPT": self.prompt, "DYNPROMPT": self.dynprompt,
                         "EXTRA_PNGINFO": self.extra_data.get("extra_pnginfo"), "UNIQUE_ID": node_id,
                         "AUTH_TOKEN_COMFY_ORG": self.extra_data.get("auth_token_comfy_org"),
                         "API_KEY_COMFY_ORG": self.extra_data.get("api_key_comfy_org")}
        for name, spec in specs.items():
            if spec.category == "hidden":
                inputs[name] = [hidden_values.get(spec.type)]
        return inputs

    def _context(self, node_id: str) -> ExecutionContext:
        def hook(value: int, total: int, preview: Any) -> None:
            data = {"value": value, "max": total, "prompt_id": self.prompt_id, "node": node_id}
            self.emit("progress", data)
            if preview is not None:
                self.emit("preview", {"prompt_id": self.prompt_id, "node_id": node_id,
                                      "display_node_id": self.dynprompt.display_id(node_id), "image": preview})

        method = self.extra_data.get("preview_method")
        return ExecutionContext(self.prompt_id, node_id, self.dynprompt.display_id(node_id),
                                self.executor.services, self.executor.interrupt, hook,
                                preview_method=method if isinstance(method, str) else None)

    def _execute(self, node_id: str) -> list[str] | None:
        """Run (or finish) one node; returns further nodes it needs first, or None when done."""
        node = self.dynprompt.get(node_id)
        if node_id in self.expansions:
            self._finish_expansion(node_id)
            return None
        assert node is not None  # only nodes of the prompt (or added by an expansion) are executed
        definition = self.executor.registry.get(node["class_type"])
        assert definition is not None  # validation (or _expand) checked the class_type
        inputs = self._gather_inputs(node_id, node, definition)

        blocked = _blocked_calls(inputs, definition.input_is_list)
        stop = next((b for b in blocked if b is not None and b.message is not None), None)
        if definition.output_node and stop is not None:
            raise ExecutionFailure(f"Execution Blocked: {stop.message}")
        if blocked and all(b is not None for b in blocked):
            self.results[node_id] = [[blocked[0]] for _ in definition.return_types]
            return None

        display = self.dynprompt.display_id(node_id)
        self.emit("executing", {"node": node_id, "display_node": display, "prompt_id": self.prompt_id})
        instance = self.executor.instance_for(node_id, definition)
        context = self._context(node_id)
        with use_context(context):
            if definition.has_lazy_check:
                wanted = self._lazy_requests(node_id, node, definition, instance, inputs, blocked)
                if wanted:
                    return wanted
            function = getattr(instance, definition.function)
            returned = map_over_lists(inputs, definition.input_is_list,
                                      self._per_call(definition, function, blocked, context))
        result = merge_results(definition, returned)
        if result.expand is not None:
            return self._expand(node_id, result)
        self._complete(node_id, result)
        return None

    @staticmethod
    def _per_call(definition, function, blocked: list, context: ExecutionContext | None = None):
        """``function`` as map_over_lists calls it: a blocked call is not made and gives the blocker
        on every output; ``context.extra["call_index"]`` is the index of the call being made (so
        GraphBuilder prefixes of ComfyUI's facade differ per call, as ComfyUI's do)."""
        index = iter(range(len(blocked)))

        def call(**kwargs):
            i = next(index)
            if blocked[i] is not None:
                return tuple([blocked[i]] if is_list else blocked[i] for is_list in definition.output_is_list)
            if context is not None:
                context.extra["call_index"] = i
            return function(**kwargs)

        return call

    def _lazy_requests(self, node_id, node, definition, instance, inputs, blocked) -> list[str]:
        specs = self.specs(definition)
        evaluated = {name for name, value in node.get("inputs", {}).items()
                     if is_link(value) and str(value[0]) in self.results}
        check = self._per_call(definition, instance.check_lazy_status, blocked)
        returned = map_over_lists(inputs, definition.input_is_list, check)
        names = {n for item in returned if isinstance(item, (list, tuple)) for n in item if isinstance(n, str)}
        requested = self.requested_lazy.setdefault(node_id, set())
        wanted = []
        for name in names:
            value = node.get("inputs", {}).get(name)
            spec = specs.get(name)
            if is_link(value) and spec is not None and spec.lazy and name not in evaluated:
                requested.add(name)
                wanted.append(str(value[0]))
        return wanted

    def _expand(self, node_id: str, result: NodeResult) -> list[str]:
        graph = result.expand.finalize() if hasattr(result.expand, "finalize") else result.expand
        if not isinstance(graph, dict):
            raise ExecutionFailure(f"Node {node_id} returned an expansion that is not a graph")
        limit = self.executor.max_expanded_nodes
        if self.expanded_nodes + len(graph) > limit:
            raise ExecutionFailure(f"Node {node_id}: expansions would add more than {limit} nodes to this "
                                   "run (limit --max-prompt-nodes)")
        self.expanded_nodes += len(graph)
        display = self.dynprompt.display_id(node_id)
        new_outputs = []
        for new_id, new_node in graph.items():
            new_id = str(new_id)
            if new_id in self.dynprompt:
                raise ExecutionFailure(f"Node {node_id} expanded into a node id that already exists: {new_id}")
            definition = self.executor.registry.get(new_node.get("class_type"))
            if definition is None:
                raise ExecutionFailure(f"Node {node_id} expanded into an unknown node type "
                                       f"{new_node.get('class_type')!r}")
            self.dynprompt.add_ephemeral(new_id, new_node, node_id, display)
            if definition.output_node:
                new_outputs.append(new_id)
        if result.ui is not None:
            self._record_ui(node_id, result.ui)
        assert result.expand_result is not None  # merge_results sets it with every expansion
        self.expansions[node_id] = result.expand_result
        return [str(v[0]) for v in result.expand_result if is_link(v)] + new_outputs

    def _finish_expansion(self, node_id: str) -> None:
        outputs = []
        for value in self.expansions[node_id]:
            if is_link(value):
                outputs.append(self.results[str(value[0])][value[1]])
            else:
                outputs.append([value])
        self._complete(node_id, NodeResult(outputs, self.ui.get(node_id)))

    def _complete(self, node_id: str, result: NodeResult) -> None:
        self.results[node_id] = result.outputs
        self.executed.append(node_id)
        if result.ui is not None:
            self._record_ui(node_id, result.ui)
        self.executor.cache.put(self.signatures.signature(node_id), result.outputs, result.ui)

    def _record_ui(self, node_id: str, ui: dict) -> None:
        self.ui[node_id] = ui
        display = self.dynprompt.display_id(node_id)
        self.outcome.meta[node_id] = {"node_id": node_id, "display_node": display,
                                      "parent_node": self.dynprompt.parent_of(node_id),
                                      "real_node_id": self.dynprompt.real_node_id(node_id)}
        self.emit("executed", {"node": node_id, "display_node": display, "output": ui, "prompt_id": self.prompt_id})

    def _fail(self, node_id: str | None, exc: BaseException) -> None:
        self.outcome.status = "error"
        current_inputs = {}
        node = self.dynprompt.get(node_id) if node_id is not None else None
        if node is not None:
            for name, value in node.get("inputs", {}).items():
                if is_link(value):
                    source = self.results.get(str(value[0]))
                    values = source[value[1]] if source is not None and value[1] < len(source) else [None]
                else:
                    values = [unwrap_literal(value)]
                current_inputs[name] = [_format_value(v) for v in values]
        self.emit("execution_error", {
            "prompt_id": self.prompt_id, "node_id": node_id, "node_type": self._class_of(node_id),
            "executed": list(self.executed), "exception_message": str(exc) or type(exc).__name__,
            "exception_type": f"{type(exc).__module__}.{type(exc).__name__}",
            "traceback": traceback.format_exception(exc), "current_inputs": current_inputs,
            "current_outputs": list(self.results), "timestamp": _now_ms()}, keep=True)


class Executor:
    """Runs prompts one at a time; owns the output cache and the node instances."""

    MAX_INSTANCES = 1024

    def __init__(self, registry: NodeRegistry, cache: OutputCache | None = None, *, services: Any = None,
                 interrupt: InterruptFlag | None = None, emit: Emit | None = None,
                 max_expanded_nodes: int = MAX_EXPANDED_NODES) -> None:
        self.registry = registry
        self.max_expanded_nodes = max_expanded_nodes
        self.cache = cache if cache is not None else OutputCache()
        self.services = services
        self.interrupt = interrupt or InterruptFlag()
        self.emit: Emit = emit or (lambda event, data: None)
        self._instances: dict[tuple[str, str], Any] = {}

    def instance_for(self, node_id: str, definition) -> Any:
        """One instance per (node id, class), kept across prompts so stateful nodes keep state."""
        key = (node_id, definition.name)
        instance = self._instances.get(key)
        if instance is None:
            if len(self._instances) >= self.MAX_INSTANCES:
                self._instances.pop(next(iter(self._instances)))
            instance = self._instances[key] = definition.node_class()
        return instance

    def execute(self, prompt_id: str, prompt: dict, outputs: list[str], extra_data: dict | None = None,
                emit: Emit | None = None) -> ExecutionOutcome:
        """Run one prompt; events go to ``emit`` (or the executor's default sink)."""
        self.interrupt.clear()
        run = _Run(self, prompt_id, prompt, extra_data or {}, emit or self.emit)
        with services_context(self.services, self.interrupt):  # for IS_CHANGED and INPUT_TYPES between nodes
            return run.run([str(o) for o in outputs])

    def reset_caches(self) -> None:
        self.cache.clear()
        self._instances.clear()
