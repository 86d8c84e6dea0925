"""The V1 node class protocol (ComfyUI's), read once into a checked description.

A node class declares itself as data: ``INPUT_TYPES()`` returns ``{"required": {...},
"optional": {...}, "hidden": {...}}`` whose values are specs ``(TYPE,)`` or ``(TYPE, options)``;
``RETURN_TYPES``, ``RETURN_NAMES``, ``FUNCTION``, ``CATEGORY``, ``OUTPUT_NODE``,
``INPUT_IS_LIST``, ``OUTPUT_IS_LIST``, ``NOT_IDEMPOTENT``, ``DESCRIPTION``, ``DEPRECATED``,
``EXPERIMENTAL``; optional ``IS_CHANGED``, ``VALIDATE_INPUTS`` and ``check_lazy_status``.

:func:`describe` checks a class against that protocol when it is registered (function present,
arities consistent, declared inputs and the function's parameters matching both ways) so a broken node fails at load
time with a message, not in the middle of somebody's job.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

INPUT_CATEGORIES = ("required", "optional", "hidden")

#: Hidden inputs the executor fills in: name in the spec -> what is injected.
HIDDEN_KINDS = ("PROMPT", "EXTRA_PNGINFO", "UNIQUE_ID", "DYNPROMPT",
                "AUTH_TOKEN_COMFY_ORG", "API_KEY_COMFY_ORG")

#: What a node's code (its function, INPUT_TYPES, VALIDATE_INPUTS) may raise that fails only its job
#: or request. SystemExit and KeyboardInterrupt count: a pack calling sys.exit() or letting a stray
#: KeyboardInterrupt out must not end the worker or the server.
NODE_FAILURES = (Exception, SystemExit, KeyboardInterrupt)


class NodeDefinitionError(TypeError):
    """A node class does not follow the protocol."""


@dataclass(frozen=True)
class InputSpec:
    name: str
    category: str  # "required" | "optional" | "hidden"
    type: Any  # a type string, or a list of combo choices
    options: dict = field(default_factory=dict)

    @property
    def lazy(self) -> bool:
        return bool(self.options.get("lazy"))

    @property
    def raw_link(self) -> bool:
        return bool(self.options.get("rawLink"))


def _spec_parts(name: str, spec: Any) -> tuple[Any, dict]:
    if isinstance(spec, str):  # hidden inputs are plain strings
        return spec, {}
    if not isinstance(spec, (list, tuple)) or not spec:
        raise NodeDefinitionError(f"input {name!r}: spec must be (TYPE,) or (TYPE, options), got {spec!r}")
    input_type = spec[0]
    options = spec[1] if len(spec) > 1 and spec[1] is not None else {}
    if not isinstance(options, dict):
        raise NodeDefinitionError(f"input {name!r}: options must be a dict, got {type(options).__name__}")
    if input_type == "COMBO" and "options" in options:
        input_type = list(options["options"])
    return input_type, options


def read_input_types(node_class: type[Any]) -> dict:
    """Call ``INPUT_TYPES()`` and check its outer shape."""
    raw = node_class.INPUT_TYPES()
    if not isinstance(raw, dict):
        raise NodeDefinitionError("INPUT_TYPES() must return a dict")
    unknown = set(raw) - set(INPUT_CATEGORIES)
    if unknown:
        raise NodeDefinitionError(f"INPUT_TYPES() has unknown sections {sorted(unknown)}")
    for category in INPUT_CATEGORIES:
        if not isinstance(raw.get(category, {}), dict):
            raise NodeDefinitionError(f"INPUT_TYPES()[{category!r}] must be a dict")
    return raw


def input_specs(node_class: type) -> dict[str, InputSpec]:
    """All inputs of a class, in declaration order (required, optional, hidden)."""
    specs: dict[str, InputSpec] = {}
    raw = read_input_types(node_class)
    for category in INPUT_CATEGORIES:
        for name, spec in raw.get(category, {}).items():
            input_type, options = _spec_parts(name, spec)
            specs[name] = InputSpec(name, category, input_type, options)
    return specs


@dataclass(frozen=True)
class NodeDefinition:
    """What the registry, validator and executor need to know about one node class."""

    name: str
    node_class: type[Any]  # any class with ComfyUI's node attributes (INPUT_TYPES, RETURN_TYPES, FUNCTION, ...)
    display_name: str
    python_module: str
    return_types: tuple
    return_names: tuple
    output_is_list: tuple
    function: str
    category: str
    output_node: bool
    input_is_list: bool
    not_idempotent: bool
    description: str
    deprecated: bool
    experimental: bool
    output_tooltips: tuple | None

    def inputs(self) -> dict[str, InputSpec]:
        """Input specs, read afresh: combos (model lists) change while the server runs."""
        return input_specs(self.node_class)

    @property
    def has_is_changed(self) -> bool:
        return callable(getattr(self.node_class, "IS_CHANGED", None))

    @property
    def validate_inputs(self) -> Callable | None:
        fn = getattr(self.node_class, "VALIDATE_INPUTS", None)
        return fn if callable(fn) else None

    @property
    def has_lazy_check(self) -> bool:
        return callable(getattr(self.node_class, "check_lazy_status", None))


def _signature_mismatch(function: Callable, names: list[str], unbound: bool,
                        declared: list[str]) -> tuple[list[str], list[str]]:
    """``(inputs in ``names`` the function cannot take, required parameters none of ``declared`` fills)``.

    The executor calls the function with keywords only, so a parameter without a default that no
    input fills would fail on every run; both directions are errors at registration.
    """
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # builtins and C callables: cannot tell, trust them
        return [], []
    params = list(signature.parameters.values())
    if unbound and params and params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
        params = params[1:]  # a plain method read off the class: its first parameter is the instance
    by_keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    accepted = {p.name for p in params if p.kind in by_keyword}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    not_accepted = [] if takes_any else [n for n in names if n not in accepted]
    undeclared = [p.name for p in params if p.kind in by_keyword and p.default is inspect.Parameter.empty
                  and p.name not in declared]
    return not_accepted, undeclared


def _defining_class(node_class: type, attribute: str) -> type | None:
    return next((klass for klass in node_class.__mro__ if attribute in vars(klass)), None)


def _own_return_names(node_class: type[Any]) -> Any:
    """``RETURN_NAMES``, unless they were inherited from a base whose outputs the class redeclared.

    A pack's subclass may set its own ``RETURN_TYPES`` and inherit a core node's names for other
    outputs (Impact-Pack's ``LatentSender(SaveLatent)`` declares no outputs, SaveLatent has one
    named ``samples``). ComfyUI never checks the two against each other, so such a node works
    there; the names describe the base's outputs, not these, and are not used.
    """
    names = getattr(node_class, "RETURN_NAMES", None)
    names_from = _defining_class(node_class, "RETURN_NAMES")
    types_from = _defining_class(node_class, "RETURN_TYPES")
    if names and types_from is not None and names_from is not None and names_from is not types_from \
            and issubclass(types_from, names_from) \
            and len(names) != len(tuple(node_class.RETURN_TYPES)):
        return None
    return names


def describe(name: str, node_class: type, display_name: str | None = None,
             python_module: str = "nodes") -> NodeDefinition:
    """Check ``node_class`` against the V1 protocol and describe it; raise NodeDefinitionError."""
    if not isinstance(node_class, type):
        raise NodeDefinitionError(f"{name}: a node must be a class, got {type(node_class).__name__}")
    if not callable(getattr(node_class, "INPUT_TYPES", None)):
        raise NodeDefinitionError(f"{name}: missing INPUT_TYPES classmethod")
    try:
        specs = input_specs(node_class)
    except NodeDefinitionError as exc:
        raise NodeDefinitionError(f"{name}: {exc}") from None

    return_types = getattr(node_class, "RETURN_TYPES", ())
    if isinstance(return_types, str) or not isinstance(return_types, (tuple, list)):
        raise NodeDefinitionError(f"{name}: RETURN_TYPES must be a tuple of types")
    return_types = tuple(return_types)
    return_names = tuple(_own_return_names(node_class) or (str(t) if isinstance(t, str) else "COMBO"
                                                         for t in return_types))
    if len(return_names) != len(return_types):
        raise NodeDefinitionError(f"{name}: RETURN_NAMES has {len(return_names)} names for "
                                  f"{len(return_types)} RETURN_TYPES")
    output_is_list = tuple(bool(x) for x in (getattr(node_class, "OUTPUT_IS_LIST", None)
                                              or (False,) * len(return_types)))
    if len(output_is_list) < len(return_types):
        # ComfyUI zips the two, so the outputs past a short OUTPUT_IS_LIST are plain outputs.
        output_is_list += (False,) * (len(return_types) - len(output_is_list))
    if len(output_is_list) != len(return_types):
        raise NodeDefinitionError(f"{name}: OUTPUT_IS_LIST has {len(output_is_list)} entries for "
                                  f"{len(return_types)} outputs")

    function_name = getattr(node_class, "FUNCTION", None)
    if not isinstance(function_name, str) or not callable(getattr(node_class, function_name, None)):
        raise NodeDefinitionError(f"{name}: FUNCTION must name a method of the class, got {function_name!r}")
    function = getattr(node_class, function_name)
    unbound = inspect.isfunction(inspect.getattr_static(node_class, function_name))
    # What the executor always passes must be accepted: required inputs and the hidden values it
    # fills. An optional input is passed only when the prompt gives it, and a hidden input of
    # another kind never is (ComfyUI's rule); packs declare such inputs for their editor scripts
    # (AnimateDiff's "autosize", tinyterra's version stamp) without taking them.
    always_passed = [n for n, spec in specs.items()
                     if spec.category == "required" or (spec.category == "hidden" and spec.type in HIDDEN_KINDS)]
    missing, undeclared = _signature_mismatch(function, always_passed, unbound, declared=list(specs))
    if missing:
        raise NodeDefinitionError(f"{name}: {function_name}() does not accept declared inputs {missing}")
    if undeclared:
        raise NodeDefinitionError(f"{name}: {function_name}() requires parameters no input declares {undeclared}")

    tooltips = getattr(node_class, "OUTPUT_TOOLTIPS", None)
    return NodeDefinition(
        name=name,
        node_class=node_class,
        display_name=display_name or getattr(node_class, "DISPLAY_NAME", None) or name,
        python_module=getattr(node_class, "RELATIVE_PYTHON_MODULE", None) or python_module,
        return_types=return_types,
        return_names=return_names,
        output_is_list=output_is_list,
        function=function_name,
        category=getattr(node_class, "CATEGORY", None) or "sd",
        output_node=bool(getattr(node_class, "OUTPUT_NODE", False)),
        input_is_list=bool(getattr(node_class, "INPUT_IS_LIST", False)),
        not_idempotent=bool(getattr(node_class, "NOT_IDEMPOTENT", False)),
        description=getattr(node_class, "DESCRIPTION", "") or "",
        deprecated=bool(getattr(node_class, "DEPRECATED", False)),
        experimental=bool(getattr(node_class, "EXPERIMENTAL", False)),
        output_tooltips=tuple(tooltips) if tooltips else None,
    )
