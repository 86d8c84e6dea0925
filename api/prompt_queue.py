"""``PromptServer.instance.prompt_queue``: ComfyUI's queue object over Weft's job store and worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from graph.context import call_with_services
from graph.validation import validate_prompt

if TYPE_CHECKING:
    from .compat import PromptServer

log = logging.getLogger(__name__)


class PromptQueue:
    """``PromptServer.instance.prompt_queue``: ComfyUI's queue methods over Weft's job store and
    worker. Jobs are run and finished by Weft's worker; ``get`` and ``task_done`` are ComfyUI's
    worker side and exist only so that packs that wrap them still import (they are never called)."""

    class ExecutionStatus(NamedTuple):
        status_str: str
        completed: bool
        messages: list

    def __init__(self, server: PromptServer) -> None:
        self.server = server
        server.prompt_queue = self
        self.flags: dict = {}

    @property
    def _state(self):
        return self.server.state

    @property
    def currently_running(self) -> dict:
        state = self._state
        item = state.worker.running_item() if state is not None else None
        return {0: tuple(item)} if item is not None else {}

    @property
    def queue(self) -> list:
        state = self._state
        return [tuple(job.queue_item()) for job in state.store.pending()] if state is not None else []

    def get_current_queue(self, *_: Any) -> tuple[list, list]:
        """(running items, pending items); an item is (number, prompt_id, prompt, extra_data, outputs)."""
        return list(self.currently_running.values()), self.queue

    get_current_queue_volatile = get_current_queue

    def get_tasks_remaining(self) -> int:
        state = self._state
        return state.worker.queue_remaining() if state is not None else 0

    def put(self, item) -> None:
        """Queue ``(number, prompt_id, prompt, extra_data, outputs, ...)`` after validating it as
        /prompt does (ValueError if invalid). It goes last, or first when ``number`` is negative."""
        state = self._require_state()
        number, prompt_id, prompt, extra_data, outputs = tuple(item)[:5]
        extra_data = dict(extra_data or {})
        result = call_with_services(state.services, validate_prompt, prompt, state.registry,
                                    list(outputs) if outputs else None)
        if not result.ok:
            raise ValueError(f"{result.error['message']}: {result.error['details']}")
        state.store.submit(str(prompt_id), state.store.next_number(front=float(number) < 0), result.prompt,
                           extra_data, result.outputs, extra_data.get("client_id"), state.options.max_queue_size)
        self.server.queue_updated()

    def get(self, timeout: float | None = None):
        raise NotImplementedError("Weft's worker takes jobs from its own store")

    def task_done(self, item_id, history_result, status=None, process_item=None) -> None:
        """Never called: Weft's worker writes the history itself."""

    def wipe_queue(self) -> None:
        self._require_state().store.clear_pending()
        self.server.queue_updated()

    def delete_queue_item(self, function: Callable[[tuple], bool]) -> bool:
        """Delete the first pending item for which ``function(item)`` is true."""
        state = self._require_state()
        for job in state.store.pending():
            if function(tuple(job.queue_item())):
                deleted = state.store.delete_pending([job.prompt_id]) > 0
                self.server.queue_updated()
                return deleted
        return False

    def get_history(self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1,
                    map_function: Callable | None = None) -> dict:
        store = self._require_state().store
        if prompt_id is not None:
            entry = store.history_entry(str(prompt_id))
            history = {prompt_id: entry} if entry is not None else {}
        elif offset < 0 and max_items is not None:
            history = store.history_tail(max(0, max_items))
        else:
            history = store.history(max_items, max(0, offset))
        if map_function is not None:
            history = {key: map_function(value) for key, value in history.items()}
        return history

    def wipe_history(self) -> None:
        self._require_state().store.clear_history()

    def delete_history_item(self, id_to_delete: str) -> None:
        self._require_state().store.delete_history([str(id_to_delete)])

    def set_flag(self, name: str, data: Any) -> None:
        """``unload_models`` / ``free_memory`` become a /free request to the worker."""
        self.flags[name] = data
        state = self._state
        if state is not None and name in ("unload_models", "free_memory"):
            state.worker.request_free(name == "unload_models" and bool(data), name == "free_memory" and bool(data))

    def get_flags(self, reset: bool = True) -> dict:
        flags = dict(self.flags)
        if reset:
            self.flags.clear()
        return flags

    def _require_state(self):
        if self._state is None:
            raise RuntimeError("the prompt queue is not available until the server is built")
        return self._state
