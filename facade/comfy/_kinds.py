"""Class checks over Weft objects: ComfyUI packs test ``isinstance(x, comfy.model_base.SDXL)``,
``isinstance(p, comfy.model_patcher.ModelPatcher)`` … on the objects Weft hands them, which are
Weft's own. A class made with :func:`kind` answers ``isinstance`` by a predicate instead."""

from __future__ import annotations

from typing import Any, Callable


class KindMeta(type):
    """A metaclass whose ``isinstance`` asks the class's ``__weft_is__`` predicate too."""

    def __instancecheck__(cls, obj: Any) -> bool:
        predicate = cls.__dict__.get("__weft_is__")
        if predicate is not None and predicate(obj):
            return True
        return type.__instancecheck__(cls, obj)


def kind(name: str, predicate: Callable[[Any], bool], base: type = object, doc: str = "") -> type:
    """A class called ``name`` that ``isinstance`` matches when ``predicate(obj)`` holds."""
    return KindMeta(name, (base,), {"__weft_is__": staticmethod(predicate), "__doc__": doc,
                                    "__module__": "comfy"})
