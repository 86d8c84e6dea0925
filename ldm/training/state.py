"""Resumable training state: one file per stage, written atomically, read back safely.

The file is a ``torch.save`` archive of plain tensors, numbers and strings (weights, optimiser
state, step, the run's configuration as JSON), so it loads with ``torch.load(weights_only=True)``.
A state whose configuration differs from the run asking for it is refused: resuming a different
run would silently mix two trainings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Protocol

import torch


class ResumeError(ValueError):
    """A saved state that does not belong to this run."""


class Stateful(Protocol):
    """What a stage saves: networks, optimisers, EMA averages."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> Any: ...


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)  # a crash mid-write leaves the previous state intact


def load_state(path: str | os.PathLike, config_json: str) -> dict[str, Any] | None:
    """The state saved at ``path`` for the run described by ``config_json``; None if there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("config") != config_json:
        raise ResumeError(f"{path} holds a training state of another configuration; delete it or "
                          "train into another folder")
    return state


def save_parts(path: str | os.PathLike, config_json: str, step: int, parts: Mapping[str, Stateful]) -> None:
    """Save every part's ``state_dict`` under its name, with the step and the configuration."""
    weights = {name: part.state_dict() for name, part in parts.items()}
    save_state(path, {"config": config_json, "step": step, **weights})


def restore_parts(path: str | os.PathLike, config_json: str, parts: Mapping[str, Stateful]) -> int:
    """Load a state saved by :func:`save_parts` into ``parts``; the step it reached (0: nothing saved)."""
    saved = load_state(path, config_json)
    if saved is None:
        return 0
    for name, part in parts.items():
        part.load_state_dict(saved[name])
    return int(saved["step"])
