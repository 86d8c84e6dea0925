"""Socket types: the one place that decides whether an output may feed an input.

Types are the strings of ComfyUI's protocol: exact names (``"IMAGE"``), comma unions
(``"FLOAT,INT"``), the wildcard ``"*"`` and combos (an input whose type is a list of choices,
or ``"COMBO"``).
"""

from __future__ import annotations

from typing import Any

ANY = "*"
COMBO = "COMBO"

#: Widget types whose literal values the validator coerces and range-checks.
PRIMITIVE_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")


def is_combo(input_type: Any) -> bool:
    """A combo input: a list of allowed values (legacy spec) or the named COMBO type."""
    return isinstance(input_type, (list, tuple)) or input_type == COMBO


def type_name(socket_type: Any) -> str:
    """The display name of a socket type; combos are all called COMBO."""
    return COMBO if is_combo(socket_type) else str(socket_type)


def _members(socket_type: str) -> set[str]:
    return {part.strip() for part in socket_type.split(",") if part.strip()}


def types_compatible(output_type: Any, input_type: Any) -> bool:
    """True when a link from an output of ``output_type`` into an input of ``input_type`` is allowed.

    - equal types match;
    - ``"*"`` on either side matches anything (Weft accepts a plain ``"*"`` string, which is
      how node packs declare "any"; ComfyUI needs a str subclass for that);
    - comma unions match when they share a member;
    - a combo input accepts COMBO, a list-typed output, or a wildcard.
    """
    # `!=` rather than `==`: packs declare "any" with str subclasses that override `__ne__`.
    if not (output_type != input_type):
        return True
    if is_combo(input_type):
        return is_combo(output_type) or output_type == ANY
    if is_combo(output_type):
        return input_type == ANY or (isinstance(input_type, str) and COMBO in _members(input_type))
    if not isinstance(output_type, str) or not isinstance(input_type, str):
        return False
    if output_type.strip() == ANY or input_type.strip() == ANY:
        return True
    received, accepted = _members(output_type), _members(input_type)
    if ANY in received or ANY in accepted:
        return True
    return bool(received & accepted)
