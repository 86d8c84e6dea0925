"""ControlNets and T2I-Adapters applied during sampling (ComfyUI's ``ControlBase`` semantics).

Three objects, each with one job:

- :class:`ControlModel` — the ``CONTROL_NET`` value a loader returns: the network (or, for a
  control-LoRA, the low-rank weights that make one from the model's UNet) and how it is fed.
- :class:`AppliedControl` — what ``ControlNetApply*`` puts into a conditioning entry's
  ``"control"``: the model with a control image, strength, start/end percent and the control
  applied before it (``previous``), so chained ControlNets sum their residuals.
- :class:`ControlRun` — one sampling job's state for an applied control (made by
  :func:`prepare_control`): the percent range as sigmas, the control image at the latent's size,
  the network the job lends to the memory manager. Per model call, :meth:`ControlRun.residuals`
  returns the control dict the UNet adds (``ldm.networks.unet.add_control``).

ComfyUI facts kept: the image is resized to the latent size x 8 (``nearest-exact``, centre crop),
repeated over the batch with ``cond_or_uncond`` order kept; outside ``[start, end]`` a control
gives only what the controls before it give; strength multiplies each residual; residuals of a
chain are summed; a T2I-Adapter runs once per job, not per step.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterator, Mapping

import torch
from torch import Tensor, nn

from ldm.control.t2i_adapter import adapter_residuals
from ldm.imaging.operations import repeat_to_batch, resample

#: A context that lends a network for a call: yields ``run(**inputs)``, which computes where the
#: engine placed it (``Engine.use_control``) and returns the network's output.
Lender = Callable[[nn.Module], ContextManager[Callable[..., Any]]]


@contextlib.contextmanager
def lend_in_place(network: nn.Module) -> Iterator[Callable[..., Any]]:
    """A lender without a memory manager: the network runs where its weights are."""
    def run(**inputs: Any) -> Any:
        with torch.no_grad():
            return network(**inputs)
    yield run


@dataclass(frozen=True, eq=False)
class ControlModel:
    """A loaded ControlNet / T2I-Adapter / control-LoRA (the ``CONTROL_NET`` value).

    ``kind``: ``"controlnet"`` (``network`` is a :class:`~ldm.control.network.ControlNetModel`),
    ``"t2i_adapter"`` (a :class:`~ldm.control.t2i_adapter.T2IAdapterModel`) or ``"control_lora"``
    (``network`` is None; ``build(unet)`` makes the network from the sampled model's UNet).
    ``extra_args`` are handed to the network (a union ControlNet's ``control_type``).
    """

    kind: str
    network: nn.Module | None = None
    build: Callable[[nn.Module], nn.Module] | None = None
    image_channels: int = 3
    global_average_pooling: bool = False
    concat_mask: bool = False  # inpainting ControlNets: the mask goes in as an extra channel
    extra_args: Mapping[str, Any] = field(default_factory=dict)
    compression_ratio: int = 8
    upscale_method: str = "nearest-exact"

    def with_extra_arg(self, name: str, value: Any) -> "ControlModel":
        return dataclasses.replace(self, extra_args={**self.extra_args, name: value})


@dataclass(frozen=True, eq=False)
class AppliedControl:
    """A control model with its image, attached to conditioning (ComfyUI's ``c_net`` copy).

    ``hint`` is [B, C, H, W] in 0..1; ``percent_range`` is (start, end) of sampling; ``previous``
    is the control the entry had before. Compared by identity: ComfyUI shares one object between
    the positive and negative entries it was applied to, and so do the apply nodes.
    """

    model: ControlModel
    hint: Tensor
    strength: float = 1.0
    percent_range: tuple[float, float] = (0.0, 1.0)
    previous: "AppliedControl | None" = None
    vae: Any = None
    extra_concat: tuple[Tensor, ...] = ()


def attach(model: ControlModel, image: Tensor, strength: float, percent_range: tuple[float, float] = (0.0, 1.0),
           previous: AppliedControl | None = None, vae: Any = None,
           extra_concat: tuple[Tensor, ...] = ()) -> AppliedControl:
    """``model`` with a control image ``image`` [B, H, W, C] (ComfyUI's ``copy().set_cond_hint``);
    a mask-concatenating model with no mask given gets an all-ones one, as in ComfyUI."""
    if model.concat_mask and not extra_concat:
        extra_concat = (torch.ones(1, 1, 1, 1),)
    return AppliedControl(model=model, hint=image.movedim(-1, 1), strength=float(strength),
                          percent_range=(float(percent_range[0]), float(percent_range[1])),
                          previous=previous, vae=vae, extra_concat=tuple(extra_concat))


def broadcast_to_batch(tensor: Tensor, batch: int, batched_number: int) -> Tensor:
    """A hint of batch ``n`` fitted to a model batch of ``batched_number`` equal chunks (cond,
    uncond, ...): each chunk gets the first items, repeated (ComfyUI's ``broadcast_image_to``).
    A single image, or one per batch item already, is used as it is."""
    if tensor.shape[0] in (1, batch):
        return tensor
    per_chunk = batch // batched_number
    tensor = tensor[:per_chunk]
    if per_chunk > tensor.shape[0]:
        repeats = [tensor] * (per_chunk // tensor.shape[0]) + [tensor[:per_chunk % tensor.shape[0]]]
        tensor = torch.cat(repeats, dim=0)
    if tensor.shape[0] == batch:
        return tensor
    return torch.cat([tensor] * batched_number, dim=0)


def merge_residuals(own: Mapping[str, list], strength: float, previous: Mapping[str, list] | None,
                    average_pool: bool = False) -> dict[str, list]:
    """``own`` scaled by ``strength`` (globally pooled first if asked), plus ``previous`` entry
    by entry (ComfyUI's ``control_merge``: a missing entry on either side passes the other)."""
    out: dict[str, list] = {"input": [], "middle": [], "output": []}
    for name, residuals in own.items():
        for residual in residuals:
            if residual is not None:
                if average_pool:
                    residual = residual.mean(dim=(2, 3), keepdim=True).expand_as(residual)
                residual = residual * strength
            out[name].append(residual)
    for name in ("input", "middle", "output"):
        if previous is None:
            break
        mine = out[name]
        for index, earlier in enumerate(previous.get(name, [])):
            if index >= len(mine):
                mine.append(earlier)
            elif earlier is not None:
                mine[index] = earlier if mine[index] is None else earlier + mine[index]
    return out


class ControlRun:
    """One sampling job's view of an :class:`AppliedControl` and the controls before it."""

    def __init__(self, applied: AppliedControl, sampling: Any, network: nn.Module,
                 previous: "ControlRun | None"):
        self.applied = applied
        self.sampling = sampling
        self.network = network
        self.previous = previous
        start, end = applied.percent_range
        self.sigma_start = float(sampling.percent_to_sigma(start))
        self.sigma_end = float(sampling.percent_to_sigma(end))
        self._hint: Tensor | None = None
        self._adapter_output: tuple[int, dict] | None = None  # (model batch, residuals): once per job

    def _active(self, sigma: Tensor) -> bool:
        s = float(sigma[0])
        return not (s > self.sigma_start or s < self.sigma_end)

    def _hint_for(self, x: Tensor) -> Tensor:
        """The control image at the latent's size x compression, with extra channels (mask)."""
        model = self.applied.model
        ratio = model.compression_ratio
        height, width = x.shape[-2] * ratio, x.shape[-1] * ratio
        if model.kind == "t2i_adapter":  # sides rounded up to what its unshuffle divides
            unshuffle = self.network.config.unshuffle
            height, width = -(-height // unshuffle) * unshuffle, -(-width // unshuffle) * unshuffle
        if self._hint is None or tuple(self._hint.shape[-2:]) != (height, width):
            hint = resample(self.applied.hint.float(), width, height, model.upscale_method, "center")
            if model.kind == "t2i_adapter" and model.image_channels == 1 and hint.shape[1] > 1:
                hint = hint.mean(dim=1, keepdim=True)
            extra = [repeat_to_batch(resample(item.float(), width, height, model.upscale_method, "center"),
                                     hint.shape[0]) for item in self.applied.extra_concat]
            if extra:
                hint = torch.cat([hint] + extra, dim=1)
            self._hint = hint
            self._adapter_output = None
        return self._hint

    def residuals(self, x: Tensor, sigma: Tensor, inputs: Mapping[str, Any], batched_number: int,
                  lend: Lender) -> dict | None:
        """The control dict for a model call on ``x`` [B, C, h, w] (sigma space) at ``sigma`` [B],
        with the batch's model inputs (``c_crossattn``, ``y``); None when nothing applies."""
        earlier = None
        if self.previous is not None:
            earlier = self.previous.residuals(x, sigma, inputs, batched_number, lend)
        if not self._active(sigma):
            return earlier
        model = self.applied.model
        hint = self._hint_for(x)
        if model.kind == "t2i_adapter":
            own = self._adapter_residuals(hint, x, batched_number, lend)
        else:
            with lend(self.network) as run:
                own = run(x=self.sampling.calculate_input(sigma, x),
                          hint=broadcast_to_batch(hint, x.shape[0], batched_number),
                          timesteps=self.sampling.timestep(sigma).float(),
                          context=inputs.get("crossattn_controlnet", inputs.get("c_crossattn")),
                          y=inputs.get("y"), **model.extra_args)
        return merge_residuals(own, self.applied.strength, earlier, model.global_average_pooling)

    def _adapter_residuals(self, hint: Tensor, x: Tensor, batched_number: int, lend: Lender) -> dict:
        """The adapter's residuals, computed at the first call of a job (and again only if the
        model batch changes): its features depend on the image alone."""
        if self._adapter_output is None or self._adapter_output[0] != x.shape[0]:
            with lend(self.network) as run:
                features = run(image=broadcast_to_batch(hint, x.shape[0], batched_number))
            self._adapter_output = (x.shape[0], adapter_residuals(features, self.network.config.xl))
        return self._adapter_output[1]


def prepare_control(applied: AppliedControl, sampling: Any, unet: nn.Module | None,
                    prepared: dict[int, ControlRun]) -> ControlRun:
    """The :class:`ControlRun` of ``applied`` for one job (ComfyUI's ``pre_run``), shared through
    ``prepared`` (by object identity) so positive and negative entries keep one run, as they keep
    one object, and batch together."""
    found = prepared.get(id(applied))
    if found is not None:
        return found
    previous = prepare_control(applied.previous, sampling, unet, prepared) if applied.previous else None
    model = applied.model
    if model.network is not None:
        network = model.network
    else:
        if unet is None or model.build is None:
            raise ValueError("a control-LoRA needs the sampled model's UNet to build its ControlNet")
        network = model.build(unet)
    run = ControlRun(applied, sampling, network, previous)
    prepared[id(applied)] = run
    return run
