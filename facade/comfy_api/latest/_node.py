"""``io.ComfyNode``: a V3 node class that also presents the V1 protocol Weft's registry reads.

A V3 node declares itself with the classmethod ``define_schema()`` and runs in the classmethod
``execute(**inputs)``. Weft knows only the V1 protocol (graph/protocol.py), so the base class
derives it from the schema:

- ``INPUT_TYPES()`` renders the schema's inputs (called afresh each time: combos may list files);
- ``RETURN_TYPES``, ``RETURN_NAMES``, ``OUTPUT_IS_LIST``, ``OUTPUT_TOOLTIPS``, ``CATEGORY``,
  ``OUTPUT_NODE``, ``DESCRIPTION``, ``DEPRECATED``, ``EXPERIMENTAL``, ``NOT_IDEMPOTENT``,
  ``INPUT_IS_LIST`` are class properties computed from ``define_schema()`` once per class;
- ``FUNCTION`` names :meth:`ComfyNode.EXECUTE_V1`, which takes the hidden values out of the
  inputs into ``cls.hidden``, calls ``execute`` and turns its ``io.NodeOutput`` into a V1 return
  (a tuple, ``{"ui", "result"}`` or ``{"expand", "result"}``);
- ``IS_CHANGED`` / ``VALIDATE_INPUTS`` exist only when the class overrides ``fingerprint_inputs`` /
  ``validate_inputs`` (as ComfyUI calls those only when overridden), and ``check_lazy_status``
  only when the class defines it;
- ``GET_NODE_INFO_V1()`` is the node's ``/object_info`` entry as ComfyUI renders V3 nodes; Weft's
  registry uses it when a class has it.

As in ComfyUI, each call runs on a per-call subclass of the node class whose ``hidden`` is that
call's :class:`~._schema.HiddenHolder`; the subclass refuses attribute writes, so a node cannot keep
state on its class between calls. ``async`` methods are awaited in an event loop of their own.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from dataclasses import dataclass
from typing import Any, Callable

from graph.executor import ExecutionBlocker

from ._dynamic import flat_sections, has_dynamic, nest_values
from ._schema import HiddenHolder, NodeOutput, Schema, v1_input_sections
from ._types import MatchType, prune_dict


# -- running pack code ----------------------------------------------------------------------------------

def _settle(value: Any) -> Any:
    """``value``, or its result when it is awaitable (a V3 method may be ``async``)."""
    if not inspect.isawaitable(value):
        return value

    async def wait() -> Any:
        return await value

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # the usual case: the executor's worker thread has no event loop
        return asyncio.run(wait())
    # Called from inside a running loop: finish the coroutine on a thread with a loop of its own.
    outcome: dict = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = context.run(asyncio.run, wait())
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="v3-node-async")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _refuse_write(cls: type, name: str, value: Any = None) -> None:
    if cls.__dict__.get("_weft_locked"):
        raise AttributeError(f"Cannot modify class attribute '{name}' on locked class '{cls.__name__}'")
    type.__setattr__(cls, name, value)


def _refuse_delete(cls: type, name: str) -> None:
    if cls.__dict__.get("_weft_locked"):
        raise AttributeError(f"Cannot delete class attribute '{name}' on locked class '{cls.__name__}'")
    type.__delattr__(cls, name)


@functools.lru_cache(maxsize=None)
def _locked_metaclass(metaclass: type) -> type:
    return type(f"Locked{metaclass.__name__}", (metaclass,),
                {"__setattr__": _refuse_write, "__delattr__": _refuse_delete})


def _origin(cls: type) -> type:
    """The node class itself, for a per-call subclass too."""
    return cls.__dict__.get("_weft_origin", cls)


def _call_class(cls: type, hidden: dict) -> type:
    """The per-call subclass of ``cls`` whose ``hidden`` holds ``{Hidden member: value}``."""
    origin = _origin(cls)
    clone = _locked_metaclass(type(origin))(
        origin.__name__, (origin,),
        {"hidden": HiddenHolder.from_dict(hidden), "_weft_origin": origin,
         "__module__": origin.__module__, "__qualname__": origin.__qualname__})
    type.__setattr__(clone, "_weft_locked", True)
    return clone


# -- what the schema says, once per class ----------------------------------------------------------------

@dataclass(frozen=True)
class _Facts:
    schema: Schema
    return_types: tuple
    return_names: tuple
    output_is_list: tuple
    output_tooltips: tuple
    hidden_keys: dict  # INPUT_TYPES()["hidden"] key -> Hidden member


def _output_columns(schema: Schema) -> tuple[tuple, tuple, tuple, tuple]:
    """Types, names, list flags and tooltips of the outputs, as V1 lists them."""
    outputs = schema.outputs
    return (tuple(o.io_type for o in outputs),
            tuple(o.display_name if o.display_name else o.io_type for o in outputs),
            tuple(bool(o.is_output_list) for o in outputs),
            tuple(o.tooltip if o.tooltip else None for o in outputs))


def _hidden_keys(schema: Schema) -> dict:
    """Names under which Weft passes the hidden values. ComfyUI keeps them apart from the inputs; in
    the V1 protocol they share one namespace, so a hidden value whose name is also an input's id
    (an output node's ``prompt`` beside a ``prompt`` text input) gets a name of its own."""
    visible = {item.id for item in schema.inputs}
    return {(member.name if member.name not in visible else f"{member.name}__hidden"): member
            for member in schema.hidden}


def _facts(cls: type) -> _Facts:
    origin = _origin(cls)
    facts = origin.__dict__.get("_weft_facts")
    if facts is None:
        origin.GET_SCHEMA()
        facts = origin.__dict__["_weft_facts"]
    return facts


def _split_hidden(facts: _Facts, inputs: dict) -> tuple[dict, dict]:
    """``({Hidden member: value}, the other inputs)``. With ``is_input_list`` Weft passes every input
    as a list, hidden ones too; a hidden value is one value, as ComfyUI gives it."""
    hidden = {member: inputs.pop(key) for key, member in facts.hidden_keys.items() if key in inputs}
    if facts.schema.is_input_list:
        hidden = {member: value[0] if isinstance(value, list) and value else value for member, value in hidden.items()}
    return hidden, inputs


def _override(cls: type, name: str) -> bool:
    """Whether the node class (not ComfyNode) defines ``name``."""
    for klass in _origin(cls).__mro__:
        if klass is ComfyNode:
            return False
        if name in klass.__dict__:
            return True
    return False


class _classproperty:
    """A read-only attribute computed from the class (``Node.RETURN_TYPES``, ``node.RETURN_TYPES``)."""

    def __init__(self, fget: Callable[[type], Any]):
        self.fget = fget
        self.__doc__ = fget.__doc__

    def __get__(self, obj: Any, owner: type) -> Any:
        return self.fget(owner)


def _bridge(cls: type, name: str, fill_missing: bool) -> Callable:
    """A plain function calling the class's ``name`` classmethod on a per-call subclass.

    Its signature (through ``__wrapped__``) is the pack method's own, because Weft filters the
    arguments it passes by that signature, as ComfyUI does. With ``fill_missing``, parameters
    without a default that Weft does not pass (linked inputs: Weft passes only literals) get None,
    which is what ComfyUI passes for them.
    """
    bound = getattr(_origin(cls), name)
    wanted = []
    if fill_missing:
        parameters = inspect.signature(bound).parameters.values()
        wanted = [p.name for p in parameters if p.default is p.empty
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    parameters = inspect.signature(bound).parameters.values()
    takes_all = any(p.kind is p.VAR_KEYWORD for p in parameters)
    accepted = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    dynamic = has_dynamic(_facts(cls).schema.inputs)

    def call(**inputs: Any) -> Any:
        facts = _facts(cls)
        hidden, values = _split_hidden(facts, dict(inputs))
        values = nest_values(facts.schema.inputs, values, facts.schema.is_input_list, strict=False)
        if dynamic and not takes_all:
            values = {key: value for key, value in values.items() if key in accepted}
        for parameter in wanted:
            values.setdefault(parameter, None)
        return _settle(getattr(_call_class(cls, hidden), name)(**values))

    functools.update_wrapper(call, bound)
    if dynamic:
        # Weft passes what the signature names; the dotted keys of dynamic inputs are not among the
        # method's parameters, so this one takes every input and nests them first.
        del call.__wrapped__
        call.__signature__ = inspect.Signature([inspect.Parameter("inputs", inspect.Parameter.VAR_KEYWORD)])
    return call


class _LazyStatusBridge:
    """Stands in for a node class's own ``check_lazy_status``: Weft's executor calls it with the
    hidden values among the inputs; the pack's method runs on a per-call subclass without them."""

    def __init__(self, raw: Any):
        self.raw = raw

    def __get__(self, obj: Any, owner: type) -> Callable:
        raw = self.raw

        def check_lazy_status(**inputs: Any) -> Any:
            hidden, values = _split_hidden(_facts(owner), inputs)
            klass = _call_class(owner, hidden)
            method = raw.__get__(None, klass) if isinstance(raw, (classmethod, staticmethod)) \
                else raw.__get__(klass, type(klass))
            return _settle(method(**values))

        return check_lazy_status


class _LazyStatusDefault:
    """``ComfyNode.check_lazy_status``. ComfyUI asks a V3 node for lazy inputs only when the node
    defines the method, so on a class that does not, the attribute is absent (Weft's executor then
    never asks). Reached through ``super()`` from an override it is ComfyUI's default: every input
    that is still None."""

    def __get__(self, obj: Any, owner: type) -> Callable:
        if not _override(owner, "check_lazy_status"):
            raise AttributeError(f"{owner.__name__} does not define check_lazy_status")

        def check_lazy_status(**inputs: Any) -> list[str]:
            return [name for name, value in inputs.items() if value is None]

        return check_lazy_status


def _normalize(name: str, returned: Any) -> NodeOutput | ExecutionBlocker:
    if returned is None:
        return NodeOutput()
    if isinstance(returned, (NodeOutput, ExecutionBlocker)):
        return returned
    if isinstance(returned, tuple):
        return NodeOutput(*returned)
    if isinstance(returned, dict):
        return NodeOutput.from_dict(returned)
    raise TypeError(f"{name}.execute returned {type(returned).__name__}; expected io.NodeOutput")


def _v1_return(facts: _Facts, name: str, out: NodeOutput | ExecutionBlocker) -> Any:
    """What a V1 node function would have returned for ``out`` (see graph/node_call.py)."""
    count = len(facts.return_types)
    if isinstance(out, ExecutionBlocker):
        return (out,) * count
    values = tuple(out.result or ())
    if out.block_execution is not None:
        values = (ExecutionBlocker(out.block_execution),) * count
    ui = out.ui if out.ui is None or isinstance(out.ui, dict) else out.ui.as_dict()
    if out.expand is not None:
        if not facts.schema.enable_expand:
            raise RuntimeError(f"Node {name} is not expandable, but expand included in NodeOutput; "
                               "set enable_expand=True on the node's Schema to allow this.")
        expanded = {"expand": out.expand, "result": values}
        return expanded | ({"ui": ui} if ui is not None else {})
    return values if ui is None else {"ui": ui, "result": values}


# -- the base class --------------------------------------------------------------------------------------

class ComfyNode:
    """Base class of V3 nodes: override the classmethods ``define_schema`` and ``execute``."""

    RELATIVE_PYTHON_MODULE = None
    SCHEMA: Schema | None = None
    #: The running call's hidden values (a HiddenHolder on the per-call subclass).
    hidden: HiddenHolder | None = None
    FUNCTION = "EXECUTE_V1"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("check_lazy_status")
        if own is not None and not isinstance(own, _LazyStatusBridge):
            type.__setattr__(cls, "check_lazy_status", _LazyStatusBridge(own))

    def __init__(self) -> None:
        type(self).VALIDATE_CLASS()

    # -- what a node overrides ----------------------------------------------------------------------
    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs: Any) -> NodeOutput:
        raise NotImplementedError

    @classmethod
    def validate_inputs(cls, **kwargs: Any) -> bool | str:
        """True, or an error message (V1's VALIDATE_INPUTS)."""
        raise NotImplementedError

    @classmethod
    def fingerprint_inputs(cls, **kwargs: Any) -> Any:
        """A value that changes when the node must run again (V1's IS_CHANGED)."""
        raise NotImplementedError

    check_lazy_status = _LazyStatusDefault()

    # -- schema ------------------------------------------------------------------------------------
    @classmethod
    def GET_BASE_CLASS(cls) -> type:
        return ComfyNode

    @classmethod
    def VALIDATE_CLASS(cls) -> None:
        for name in ("define_schema", "execute"):
            if not _override(cls, name):
                raise TypeError(f"No {name} function was defined for node class {cls.__name__}.")

    @classmethod
    def FINALIZE_SCHEMA(cls) -> Schema:
        schema = cls.define_schema()
        schema.finalize()
        return schema

    @classmethod
    def GET_SCHEMA(cls) -> Schema:
        """The checked schema; the first call fixes the V1 attributes of the class."""
        cls.VALIDATE_CLASS()
        schema = cls.FINALIZE_SCHEMA()
        schema.validate()
        origin = _origin(cls)
        if "_weft_facts" not in origin.__dict__:
            types, names, is_list, tooltips = _output_columns(schema)
            origin._weft_facts = _Facts(schema, types, names, is_list, tooltips, _hidden_keys(schema))
        origin.SCHEMA = schema
        return schema

    @classmethod
    def INPUT_TYPES(cls, include_hidden: bool = True, return_schema: bool = False) -> Any:
        """The V1 input spec Weft validates and runs with. It differs from the ``/object_info``
        one in two places: a hidden value named like an input gets its own key (see
        ``_hidden_keys``), and a multi-select combo lists no options, so the validator does not
        look its list value up among them; and dynamic inputs are flattened into the dotted keys a
        prompt carries (``_dynamic.py``)."""
        schema = cls.FINALIZE_SCHEMA()
        sections = flat_sections(schema.inputs)
        hidden = {key: (member.value,) for key, member in _hidden_keys(schema).items()}
        sections.pop("hidden", None)
        if hidden and include_hidden:
            sections["hidden"] = hidden
        return (sections, schema) if return_schema else sections

    @classmethod
    def GET_NODE_INFO_V1(cls) -> dict:
        """This node's ``/object_info`` entry, keys and values as ComfyUI (v0.3.64) renders a V3
        node; fields of later releases appear only when the schema uses them."""
        schema = cls.GET_SCHEMA()
        sections = v1_input_sections(schema)
        types, names, is_list, tooltips = _output_columns(schema)
        badge = schema.price_badge
        matchtypes = [o.template.template_id if isinstance(o, MatchType.Output) else None for o in schema.outputs]
        later = {
            "output_matchtypes": matchtypes if any(m is not None for m in matchtypes) else None,
            "is_input_list": schema.is_input_list or None,
            "dev_only": schema.is_dev_only or None,
            "has_intermediate_output": schema.has_intermediate_output or None,
            "search_aliases": list(schema.search_aliases) or None,
            "essentials_category": schema.essentials_category,
            "price_badge": badge.as_dict(schema.inputs) if hasattr(badge, "as_dict") else badge,
        }
        return {
            "input": sections,
            "input_order": {section: list(entries) for section, entries in sections.items()},
            "output": list(types),
            "output_is_list": list(is_list),
            "output_name": list(names),
            "output_tooltips": list(tooltips),
            "name": schema.node_id,
            "display_name": schema.display_name,
            "description": schema.description,
            "python_module": getattr(cls, "RELATIVE_PYTHON_MODULE", "nodes"),
            "category": schema.category,
            "output_node": schema.is_output_node,
            "deprecated": schema.is_deprecated,
            "experimental": schema.is_experimental,
            "api_node": schema.is_api_node,
        } | prune_dict(later)

    # -- the V1 protocol -----------------------------------------------------------------------------
    @classmethod
    def EXECUTE_V1(cls, **inputs: Any) -> Any:
        """The V1 entry point (``FUNCTION``): run ``execute`` and return what a V1 node would."""
        facts = _facts(cls)
        hidden, values = _split_hidden(facts, inputs)
        values = nest_values(facts.schema.inputs, values, facts.schema.is_input_list)
        returned = _settle(_call_class(cls, hidden).execute(**values))
        return _v1_return(facts, cls.__name__, _normalize(cls.__name__, returned))

    @_classproperty
    def IS_CHANGED(cls) -> Callable:
        if not _override(cls, "fingerprint_inputs"):
            raise AttributeError(f"{cls.__name__} does not define fingerprint_inputs")
        return _bridge(cls, "fingerprint_inputs", fill_missing=True)

    @_classproperty
    def VALIDATE_INPUTS(cls) -> Callable:
        if not _override(cls, "validate_inputs"):
            raise AttributeError(f"{cls.__name__} does not define validate_inputs")
        return _bridge(cls, "validate_inputs", fill_missing=False)

    RETURN_TYPES = _classproperty(lambda cls: _facts(cls).return_types)
    RETURN_NAMES = _classproperty(lambda cls: _facts(cls).return_names)
    OUTPUT_IS_LIST = _classproperty(lambda cls: _facts(cls).output_is_list)
    OUTPUT_TOOLTIPS = _classproperty(lambda cls: _facts(cls).output_tooltips)
    DISPLAY_NAME = _classproperty(lambda cls: _facts(cls).schema.display_name)
    CATEGORY = _classproperty(lambda cls: _facts(cls).schema.category)
    DESCRIPTION = _classproperty(lambda cls: _facts(cls).schema.description)
    OUTPUT_NODE = _classproperty(lambda cls: _facts(cls).schema.is_output_node)
    INPUT_IS_LIST = _classproperty(lambda cls: _facts(cls).schema.is_input_list)
    NOT_IDEMPOTENT = _classproperty(lambda cls: _facts(cls).schema.not_idempotent)
    DEPRECATED = _classproperty(lambda cls: _facts(cls).schema.is_deprecated)
    EXPERIMENTAL = _classproperty(lambda cls: _facts(cls).schema.is_experimental)
    DEV_ONLY = _classproperty(lambda cls: _facts(cls).schema.is_dev_only)
    API_NODE = _classproperty(lambda cls: _facts(cls).schema.is_api_node)
    HAS_INTERMEDIATE_OUTPUT = _classproperty(lambda cls: _facts(cls).schema.has_intermediate_output)
    ACCEPT_ALL_INPUTS = _classproperty(lambda cls: _facts(cls).schema.accept_all_inputs)
