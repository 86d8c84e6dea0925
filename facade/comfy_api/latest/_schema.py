"""What a V3 node declares and returns: ``io.Schema``, ``io.Hidden``, ``io.NodeOutput``.

``Schema`` is a dataclass with ComfyUI's field names (v0.3.64, plus fields of later releases so
newer packs construct without errors; the later ones show in ``/object_info`` only when a node
uses them). :func:`v1_input_sections` renders its inputs as a V1 ``INPUT_TYPES`` dict, the
shape both Weft's registry and ComfyUI's ``/object_info`` use.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from graph.executor import ExecutionBlocker

from ._types import DynamicInput, Input, Output


class Hidden(str, Enum):
    """Values a node receives without an input socket; read them as ``cls.hidden.<member name>``."""

    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"
    dynprompt = "DYNPROMPT"
    auth_token_comfy_org = "AUTH_TOKEN_COMFY_ORG"
    api_key_comfy_org = "API_KEY_COMFY_ORG"
    comfy_usage_source = "COMFY_USAGE_SOURCE"


class HiddenHolder:
    """``cls.hidden`` while a node runs: one attribute per :class:`Hidden` member; any other
    attribute (or a hidden value the schema did not ask for) reads as None."""

    def __init__(self, unique_id: Any = None, prompt: Any = None, extra_pnginfo: Any = None, dynprompt: Any = None,
                 auth_token_comfy_org: Any = None, api_key_comfy_org: Any = None, comfy_usage_source: Any = None,
                 **kwargs: Any):
        self.unique_id = unique_id
        self.prompt = prompt
        self.extra_pnginfo = extra_pnginfo
        self.dynprompt = dynprompt
        self.auth_token_comfy_org = auth_token_comfy_org
        self.api_key_comfy_org = api_key_comfy_org
        self.comfy_usage_source = comfy_usage_source

    def __getattr__(self, name: str) -> None:
        return None

    @classmethod
    def from_dict(cls, values: dict | None) -> HiddenHolder:
        """From ``{Hidden member: value}``."""
        values = values or {}
        return cls(**{member.name: values.get(member) for member in Hidden})


def as_hidden(value: Any) -> Hidden:
    """A schema's hidden entry as a :class:`Hidden` member (packs sometimes give the string)."""
    if isinstance(value, Hidden):
        return value
    try:
        return Hidden(value)
    except ValueError:
        return Hidden[value]


@dataclass
class Schema:
    """A V3 node's declaration (``define_schema()`` returns one)."""

    node_id: str
    display_name: str | None = None
    category: str = "sd"
    inputs: list[Input] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    hidden: list[Hidden] = field(default_factory=list)
    description: str = ""
    search_aliases: list[str] = field(default_factory=list)
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_dev_only: bool = False
    is_api_node: bool = False
    price_badge: Any = None
    not_idempotent: bool = False
    enable_expand: bool = False
    accept_all_inputs: bool = False
    essentials_category: str | None = None
    has_intermediate_output: bool = False
    loop_boundary: str | None = None

    def validate(self) -> None:
        """Raise ValueError when input ids or output ids repeat within their list."""
        # Dynamic inputs are left out, as in ComfyUI: their options may reuse names.
        input_ids = [i.id for item in self.inputs if not isinstance(item, DynamicInput) for i in item.get_all()]
        output_ids = [o.id for o in self.outputs]
        problems = []
        for kind, ids in (("Input", input_ids), ("Output", output_ids)):
            repeated = [name for name, count in Counter(ids).items() if count > 1]
            if repeated:
                problems.append(f"{kind} ids must be unique, but {repeated} are not.")
        # ComfyUI v0.3.64 also refused an id used by an input and an output; current packs
        # (KJNodes, Easy-Use: an "image" input and an "image" output) rely on that being allowed.
        if problems:
            raise ValueError("\n".join(problems))
        for item in [*self.inputs, *self.outputs]:
            item.validate()

    def finalize(self) -> None:
        """Add the hidden values API and output nodes always get; name unnamed outputs."""
        self.inputs = list(self.inputs or [])
        self.outputs = list(self.outputs or [])
        self.hidden = [as_hidden(h) for h in (self.hidden or [])]
        implied = []
        if self.is_api_node:
            implied += [Hidden.auth_token_comfy_org, Hidden.api_key_comfy_org]
        if self.is_output_node:
            implied += [Hidden.prompt, Hidden.extra_pnginfo]
        self.hidden += [h for h in implied if h not in self.hidden]
        for index, output in enumerate(self.outputs):
            if output.id is None:
                output.id = f"_{index}_{output.io_type}_"


def v1_input_sections(schema: Schema) -> dict:
    """``{"required": {id: (io_type, options)}, "optional": …, "hidden": {name: (VALUE,)}}``."""
    sections: dict = {"required": {}}
    for item in schema.inputs:
        options = item.as_dict()
        options.pop("optional", None)
        sections.setdefault("optional" if item.optional else "required", {})[item.id] = (item.get_io_type(), options)
    for hidden in schema.hidden:
        sections.setdefault("hidden", {})[hidden.name] = (hidden.value,)
    return sections


class _UIOutput:
    """Base of the ``ui.*`` results; ``as_dict()`` gives the node's ``ui`` dict."""

    def as_dict(self) -> dict:
        raise NotImplementedError


class NodeOutput:
    """What ``execute`` returns: the output values, and optionally ``ui``, an ``expand`` graph, or
    ``block_execution`` (a message; every output then blocks the nodes downstream)."""

    def __init__(self, *args: Any, ui: _UIOutput | dict | None = None, expand: dict | None = None,
                 block_execution: str | None = None):
        self.args = args
        self.ui = ui
        self.expand = expand
        self.block_execution = block_execution

    @property
    def result(self) -> tuple | None:
        return self.args if self.args else None

    @classmethod
    def from_dict(cls, data: dict) -> NodeOutput:
        """From a V1-style ``{"result": …, "ui": …, "expand": …}`` dict."""
        result = data.get("result", ())
        if isinstance(result, ExecutionBlocker):
            return cls(block_execution=result.message)
        return cls(*(result or ()), ui=data.get("ui"), expand=data.get("expand"))

    def __getitem__(self, index: int) -> Any:
        return self.args[index]
