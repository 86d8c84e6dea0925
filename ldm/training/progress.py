"""Progress of a training run, reported to whoever runs it (a node, the command line)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Progress:
    stage: str  # "autoencoder" | "diffusion" | "refine" (a second stage-2 phase) | "latents"
    step: int  # steps done
    total: int
    losses: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # since this run (or resume) started
    preview: Any = None  # a PIL image now and then (reconstructions, samples)
    step_in_run: int = 0  # steps done since this process started (for the rate)

    def line(self) -> str:
        losses = " ".join(f"{name} {value:.4g}" for name, value in self.losses.items())
        rate = self.seconds / max(1, self.step_in_run) if self.step_in_run else 0.0
        left = rate * (self.total - self.step)
        return (f"[{self.stage}] step {self.step}/{self.total} {losses} "
                f"({self.seconds / 60:.1f} min, ~{left / 60:.1f} min left)")


ProgressCallback = Callable[[Progress], None]


class PrintProgress:
    """Prints a line every ``every`` steps (and at the end) to ``stream``."""

    def __init__(self, every: int = 50, stream=None):
        self.every = every
        self.stream = stream or sys.stdout

    def __call__(self, progress: Progress) -> None:
        if progress.step % self.every == 0 or progress.step == progress.total:
            print(progress.line(), file=self.stream, flush=True)


def no_progress(_progress: Progress) -> None:
    return None
