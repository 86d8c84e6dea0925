"""What a running node can reach: its ids, the server's services, interrupt and progress.

V1 node functions receive only their inputs, so the executor installs an
:class:`ExecutionContext` in a :class:`contextvars.ContextVar` while a node runs. The variable is
the only module-level object here and holds no state of its own: its value belongs to the
worker thread's current context and is reset when the node returns.

Long-running node code calls :func:`check_interrupted` (raises :class:`Interrupted`) and
:func:`report_progress`; both are no-ops outside execution, so engine code can call them freely.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


class Interrupted(Exception):
    """Raised inside a node when the user interrupted the job."""


class InterruptFlag:
    """A thread-safe interrupt request, optionally aimed at one prompt id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False

    def request(self) -> None:
        with self._lock:
            self._set = True

    def clear(self) -> None:
        with self._lock:
            self._set = False

    def is_set(self) -> bool:
        with self._lock:
            return self._set

    def raise_if_set(self) -> None:
        with self._lock:
            if self._set:
                self._set = False
                raise Interrupted("interrupted by the user")


ProgressHook = Callable[[int, int, Any], None]


@dataclass
class ExecutionContext:
    prompt_id: str
    node_id: str
    display_node_id: str
    services: Any  # what the server hands down (folders, model memory, options); opaque to graph/
    interrupt: InterruptFlag
    progress_hook: ProgressHook | None = None
    extra: dict = field(default_factory=dict)
    #: How this job's live previews are made (none | auto | latent2rgb | taesd), as the server
    #: resolved it for the client that queued it; None: the server's own setting.
    preview_method: str | None = None

    def check_interrupted(self) -> None:
        self.interrupt.raise_if_set()

    def progress(self, value: int, total: int, preview: Any = None) -> None:
        """Report progress of the running node; ``preview`` is an optional image for the UI."""
        self.check_interrupted()
        if self.progress_hook is not None:
            self.progress_hook(value, total, preview)


_current: contextvars.ContextVar[ExecutionContext | None] = contextvars.ContextVar(
    "weft_execution_context", default=None)


def current_context() -> ExecutionContext | None:
    return _current.get()


def require_context() -> ExecutionContext:
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("this node needs the executor's context (called outside a running prompt)")
    return ctx


@contextlib.contextmanager
def use_context(ctx: ExecutionContext) -> Iterator[ExecutionContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def services_context(services: Any, interrupt: InterruptFlag | None = None):
    """A context with no running node, for code that needs the services outside a node's execution:
    ``INPUT_TYPES`` listing model folders, ``VALIDATE_INPUTS``, ``IS_CHANGED``."""
    return use_context(ExecutionContext("", "", "", services, interrupt or InterruptFlag()))


def call_with_services(services: Any, fn: Callable, *args, **kwargs):
    with services_context(services):
        return fn(*args, **kwargs)


def check_interrupted() -> None:
    ctx = _current.get()
    if ctx is not None:
        ctx.check_interrupted()


def report_progress(value: int, total: int, preview: Any = None) -> None:
    ctx = _current.get()
    if ctx is not None:
        ctx.progress(value, total, preview)
