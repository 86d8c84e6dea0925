"""EasyCache (Zhou et al. 2025, "Less is Enough: Training-Free Video Diffusion Acceleration via
Runtime-Adaptive Caching", arXiv 2507.02860) and ComfyUI's LazyCache variant: skip a model
evaluation when the output is predicted to change little, reusing the last ``output - input``.

The estimate: with ``k = Δoutput / Δinput`` measured on the last computed step (mean absolute
changes, on a ``SUBSAMPLE``-strided grid), the relative output change of this step is
``k·Δinput / mean|output|``; these estimates accumulate over skipped steps, and a step is skipped
while the sum stays below ``reuse_threshold`` (so 0 never skips). Only steps with
``sigma_start >= sigma > sigma_end`` (from the start / end percents) may be skipped.

- EasyCache wraps the UNet (a ``diffusion_model`` wrapper): inputs and outputs are the network's,
  tracked on the batch part of the first conditioning entry seen (``uuids``); when it skips,
  every entry of that step reuses its own cached difference.
- LazyCache wraps the whole guided prediction (a ``predict_noise`` wrapper): the sampler's state
  and the guided x0.

State belongs to one sampling run: the ``predict_noise`` wrapper sees the run's denoiser as
``executor.class_obj`` (a new one per run) and starts afresh when it changes, as ComfyUI clones
its holder per run; it also opens each step (EasyCache's per-step skip decision).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import torch
from torch import Tensor

log = logging.getLogger(__name__)

SUBSAMPLE = 8


class _RunState:
    """The sigma range of the current run and the change-rate bookkeeping both caches share."""

    def __init__(self, name: str, reuse_threshold: float, start_percent: float, end_percent: float,
                 verbose: bool):
        self.name = name
        self.reuse_threshold = reuse_threshold
        self.start_percent = start_percent
        self.end_percent = end_percent
        self.verbose = verbose
        self._run: Any = None
        self.sigma_start = self.sigma_end = 0.0
        self.reset()

    def reset(self) -> None:
        self.rate: Tensor | None = None  # Δoutput / Δinput of the last computed step
        self.cumulative = 0.0
        self.input_prev: Tensor | None = None
        self.output_prev: Tensor | None = None
        self.output_norm: Tensor | None = None
        self.skipped = 0
        self.shape = None

    def open_run(self, denoiser: Any) -> None:
        """Start afresh when ``denoiser`` (the run's) is not the last one seen."""
        if self._run is not None and self._run() is denoiser:
            return
        if self._run is not None:
            log.info("%s: skipped %d model evaluations in the last run", self.name, self.skipped)
        self._run = weakref.ref(denoiser)
        sampling = denoiser.model.sampling
        self.sigma_start = sampling.percent_to_sigma(self.start_percent)
        self.sigma_end = sampling.percent_to_sigma(self.end_percent)
        self.reset()
        log.info("%s enabled: threshold %s, start %s, end %s", self.name, self.reuse_threshold,
                 self.start_percent, self.end_percent)

    def in_range(self, sigma: float) -> bool:
        return self.sigma_start >= sigma > self.sigma_end

    def past_end(self, sigma: float) -> bool:
        return sigma <= self.sigma_end

    def same_shape(self, x: Tensor) -> None:
        """Forget what was measured when the state's device, dtype or shape changes."""
        shape = (x.device, x.dtype, tuple(x.shape[1:]))
        if self.shape is not None and self.shape != shape:
            log.warning("%s: tensor shape, dtype or device changed, state reset", self.name)
            self.reset()
        self.shape = shape

    def should_skip(self, input_change: Tensor | None) -> bool:
        """Accumulate this step's estimated output change; True while it stays under the threshold."""
        if input_change is None or self.output_norm is None or self.rate is None:
            return False
        self.cumulative += float(self.rate * input_change / self.output_norm)
        if self.cumulative < self.reuse_threshold:
            if self.verbose:
                log.info("%s: skipping, cumulative change %.4f", self.name, self.cumulative)
            self.skipped += 1
            return True
        self.cumulative = 0.0
        return False

    def record(self, x_sub: Tensor, out_sub: Tensor, out: Tensor, input_change: Tensor | None) -> None:
        """Remember a computed step: its subsampled input/output and the measured rate."""
        if self.output_prev is not None and input_change is not None:
            self.rate = (out_sub - self.output_prev).abs().mean() / input_change
        self.input_prev, self.output_prev = x_sub.clone(), out_sub.clone()
        self.output_norm = out.abs().mean()


def _subsample(x: Tensor) -> Tensor:
    return x[..., ::SUBSAMPLE, ::SUBSAMPLE]


class EasyCache(_RunState):
    """ComfyUI's EasyCache: :meth:`open_step` is the ``predict_noise`` wrapper, :meth:`forward`
    the ``diffusion_model`` wrapper."""

    def __init__(self, reuse_threshold: float, start_percent: float, end_percent: float, verbose: bool = False):
        super().__init__("EasyCache", reuse_threshold, start_percent, end_percent, verbose)

    def reset(self) -> None:
        super().reset()
        self.first_uuid = None
        self.skip_step = False
        self.diffs: dict = {}

    def open_step(self, executor, x, sigma, model_options, seed):
        self.open_run(executor.class_obj)
        self.skip_step = False
        return executor(x, sigma, model_options, seed)

    def _part(self, x: Tensor, uuids: list) -> Tensor:
        size = x.shape[0] // len(uuids)
        index = uuids.index(self.first_uuid)
        return x[size * index:size * (index + 1)]

    def _from_cache(self, x: Tensor, uuids: list) -> Tensor:
        return x + torch.cat([self.diffs[uuid].to(x) for uuid in uuids])

    def forward(self, executor, x, timesteps, context, y, control, transformer_options):
        sigma = float(transformer_options["sigmas"][0])
        uuids = list(transformer_options.get("uuids") or [])
        if self.past_end(sigma) or not uuids:
            return executor(x, timesteps, context, y, control, transformer_options)
        input_change = None
        if sigma <= self.sigma_start:
            self.same_shape(x)
            if self.skip_step and all(uuid in self.diffs for uuid in uuids):
                return self._from_cache(x, uuids)
            if self.first_uuid is None:
                self.first_uuid = uuids[0]
            if self.first_uuid in uuids:
                if self.input_prev is not None:
                    input_change = (_subsample(self._part(x, uuids)) - self.input_prev).abs().mean()
                if self.should_skip(input_change) and all(uuid in self.diffs for uuid in uuids):
                    self.skip_step = True
                    return self._from_cache(x, uuids)
        out = executor(x, timesteps, context, y, control, transformer_options)
        size = x.shape[0] // len(uuids)
        for index, uuid in enumerate(uuids):
            self.diffs[uuid] = (out - x)[size * index:size * (index + 1)]
        if self.first_uuid in uuids:
            self.record(_subsample(self._part(x, uuids)), _subsample(self._part(out, uuids)), out, input_change)
        return out


class LazyCache(_RunState):
    """ComfyUI's LazyCache: :meth:`predict` is its ``predict_noise`` wrapper."""

    def __init__(self, reuse_threshold: float, start_percent: float, end_percent: float, verbose: bool = False):
        super().__init__("LazyCache", reuse_threshold, start_percent, end_percent, verbose)

    def reset(self) -> None:
        super().reset()
        self.diff: Tensor | None = None

    def predict(self, executor, x, sigma, model_options, seed):
        self.open_run(executor.class_obj)
        value = float(sigma[0])
        if self.past_end(value):
            return executor(x, sigma, model_options, seed)
        input_change = None
        if value <= self.sigma_start:
            self.same_shape(x)
            if self.input_prev is not None:
                input_change = (_subsample(x) - self.input_prev).abs().mean()
            if self.should_skip(input_change) and self.diff is not None:
                return x + self.diff.to(x)
        out = executor(x, sigma, model_options, seed)
        self.diff = out - x
        self.record(_subsample(x), _subsample(out), out, input_change)
        return out

