"""Training a LoRA on a diffusion model's UNet from latents and conditioning, as ComfyUI's
``TrainLoraNode`` does.

Every weight layer of the UNet (linear, convolution, normalisation) gets an adapter: a weight of
two or more dimensions a low-rank update ``W + (alpha / rank) · up @ down`` (``up`` ``[out, r]``
Kaiming-uniform, ``down`` ``[r, in·kh·kw]`` zeros, alpha 1, so training starts from the model
itself), a one-dimensional weight and every bias a full difference. The adapters are attached as
``torch.nn.utils.parametrize`` parametrizations for the length of the run only — the UNet's own
tensors are never written — and the result is a LoRA state dict in ComfyUI's naming
(``diffusion_model.<module>.lora_up.weight`` / ``.lora_down.weight`` / ``.alpha``, ``.diff``,
``.diff_b``), which :mod:`ldm.lora.patches` loads back like any LoRA file.

One step (ComfyUI's ``TrainSampler``): pick a batch, noise it at seed ``seed + 1000·step`` to a
sigma drawn uniformly in schedule percent, let the model predict x0 and take the loss against the
clean latent; gradients accumulate over ``grad_accumulation_steps`` micro-steps per optimizer step.
Three ways to batch, as there: one tensor of equal-sized latents (a random batch of it), a list
of latents of different sizes (each item of the batch run alone, losses averaged), or resolution
buckets (a bucket drawn in proportion to its size, then a batch inside it).

Where Weft differs: batch picks, noise levels and the adapters' start come from one generator
seeded with ``seed`` (ComfyUI draws them from torch's global generator, so its runs do not repeat);
the latents of all three modes are moved into the model's space (``process_latent_in``), where
ComfyUI does so only for equal-sized latents; a continued LoRA keeps its file's alpha and its
``.diff`` / ``.diff_b`` tensors.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
import torch.utils.checkpoint
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ldm.lora.patches import DiffAdapter, LoraAdapter, load_lora, unet_key_map
from ldm.sampling.denoiser import UNetDenoiser
from ldm.sampling.model_conds import ModelInputs
from ldm.sampling.model_sampling import ModelSampling
from ldm.sampling.noise import prepare_noise
from ldm.training.loop import autocast

log = logging.getLogger(__name__)

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "AdamW": torch.optim.AdamW, "Adam": torch.optim.Adam, "SGD": torch.optim.SGD, "RMSprop": torch.optim.RMSprop}
LOSSES: dict[str, type[nn.Module]] = {
    "MSE": nn.MSELoss, "L1": nn.L1Loss, "Huber": nn.HuberLoss, "SmoothL1": nn.SmoothL1Loss}
#: The layers ComfyUI's cast operations give a ``weight_function``: the ones it adapts.
ADAPTED_LAYERS = (nn.Linear, nn.modules.conv._ConvNd, nn.GroupNorm, nn.LayerNorm, nn.Embedding)
#: ComfyUI names the UNet's modules from its model object, where the UNet is ``diffusion_model``.
MODULE_PREFIX = "diffusion_model."
#: Seeds of successive steps' noise are this far apart (ComfyUI's ``seed + i * 1000``).
NOISE_SEED_STRIDE = 1000


@dataclass(frozen=True)
class LoraTraining:
    """The knobs of one run (the node's inputs, already parsed)."""

    steps: int = 16
    batch_size: int = 1
    grad_accumulation_steps: int = 1
    learning_rate: float = 0.0005
    rank: int = 8
    optimizer: str = "AdamW"
    loss_function: str = "MSE"
    seed: int = 0
    #: Arithmetic dtype of the forward pass (autocast; float32 runs without it).
    training_dtype: torch.dtype = torch.bfloat16
    lora_dtype: torch.dtype = torch.bfloat16
    gradient_checkpointing: bool = True
    checkpoint_depth: int = 1

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.loss_function not in LOSSES:
            raise ValueError(f"loss_function must be one of {list(LOSSES)}, got {self.loss_function!r}")


@dataclass(frozen=True)
class TrainingData:
    """Latents already in the model's space (through ``process_latent_in``) and, per latent
    index, its model inputs (``{"c_crossattn": CrossAttnInput, …}``).

    ``groups`` is a list of ``[Bi, C, h, w]`` tensors; ``per_item`` runs each latent alone (a
    list of ``[1, C, h, w]`` of different sizes); ``bucketed`` draws a group per step in
    proportion to its size. Latent indices count through the groups in order.
    """

    groups: list[Tensor]
    conds: list[ModelInputs]
    per_item: bool = False
    bucketed: bool = False

    def __post_init__(self):
        count = sum(group.shape[0] for group in self.groups)
        if count != len(self.conds):
            raise ValueError(f"{count} latents but {len(self.conds)} conditionings")


@dataclass
class TrainedLora:
    state_dict: dict[str, Tensor]
    losses: list[float]


# --------------------------------------------------------------------------- adapters

class LowRankUpdate(nn.Module):
    """``W + (alpha / rank) · up @ down``, reshaped to W (a parametrization of W)."""

    def __init__(self, up: Tensor, down: Tensor, alpha: float):
        super().__init__()
        self.lora_up = nn.Parameter(up)      # [out, r]
        self.lora_down = nn.Parameter(down)  # [r, in·kh·kw]
        self.alpha = float(alpha)

    def forward(self, weight: Tensor) -> Tensor:
        delta = (self.lora_up @ self.lora_down).reshape(weight.shape)
        return (weight + (self.alpha / self.lora_down.shape[0]) * delta).to(weight.dtype)


class AddedDifference(nn.Module):
    """``W + diff`` (a parametrization of a bias or a one-dimensional weight)."""

    def __init__(self, diff: Tensor):
        super().__init__()
        self.diff = nn.Parameter(diff)

    def forward(self, tensor: Tensor) -> Tensor:
        return (tensor + self.diff).to(tensor.dtype)


def new_low_rank_update(weight: Tensor, rank: int, generator: torch.Generator) -> LowRankUpdate:
    """An update that starts at zero: ``up`` Kaiming-uniform (a = √5), ``down`` zeros (ComfyUI's
    ``LoRAAdapter.create_train``, alpha 1)."""
    up = torch.empty(weight.shape[0], rank, dtype=torch.float32)
    nn.init.kaiming_uniform_(up, a=5 ** 0.5, generator=generator)
    down = torch.zeros(rank, weight.shape[1:].numel(), dtype=torch.float32)
    return LowRankUpdate(up, down, alpha=1.0)


def existing_adapters(unet: nn.Module, lora_sd: Mapping[str, Tensor]) -> dict[str, LoraAdapter | DiffAdapter]:
    """The adapters of a LoRA file by UNet tensor key (``input_blocks.1.1.proj_in.weight``), in any
    naming :mod:`ldm.lora.patches` reads."""
    adapters, unmatched = load_lora(lora_sd, unet_key_map(unet.state_dict().keys()))
    for name in unmatched:
        log.warning("existing LoRA: key not matched to the UNet, not trained further: %s", name)
    return adapters


def _resumed(adapter: LoraAdapter | DiffAdapter, tensor: Tensor, key: str) -> nn.Module:
    if isinstance(adapter, DiffAdapter):
        return AddedDifference(adapter.diff.to(torch.float32).reshape(tensor.shape).clone())
    if adapter.mid is not None:
        raise ValueError(f"existing LoRA: {key} is a Tucker (lora_mid) adapter, which training cannot continue")
    alpha = adapter.rank if adapter.alpha is None else adapter.alpha  # no alpha: scale 1
    return LowRankUpdate(adapter.up.to(torch.float32).flatten(start_dim=1).clone(),
                         adapter.down.to(torch.float32).flatten(start_dim=1).clone(), alpha)


def build_adapters(unet: nn.Module, rank: int, generator: torch.Generator,
                   existing: Mapping[str, LoraAdapter | DiffAdapter] | None = None) -> dict[str, nn.Module]:
    """One adapter per adapted tensor of the UNet, by tensor key; ``existing`` ones continue."""
    existing = existing or {}
    adapters: dict[str, nn.Module] = {}
    for name, module in unet.named_modules():
        if not isinstance(module, ADAPTED_LAYERS):
            continue
        for tensor_name in ("weight", "bias"):
            tensor = getattr(module, tensor_name, None)
            if not isinstance(tensor, Tensor):
                continue
            key = f"{name}.{tensor_name}"
            if key in existing:
                adapters[key] = _resumed(existing[key], tensor, key)
            elif tensor_name == "weight" and tensor.ndim >= 2:
                adapters[key] = new_low_rank_update(tensor, rank, generator)
            else:
                adapters[key] = AddedDifference(torch.zeros(tensor.shape, dtype=torch.float32))
    return adapters


def lora_state_dict(adapters: Mapping[str, nn.Module], dtype: torch.dtype) -> dict[str, Tensor]:
    """The adapters as a LoRA file's tensors, in ComfyUI's training naming."""
    out: dict[str, Tensor] = {}
    for key, adapter in adapters.items():
        module, _, tensor_name = key.rpartition(".")
        prefix = MODULE_PREFIX + module
        if isinstance(adapter, LowRankUpdate):
            out[f"{prefix}.lora_up.weight"] = adapter.lora_up.detach().to(dtype).contiguous()
            out[f"{prefix}.lora_down.weight"] = adapter.lora_down.detach().to(dtype).contiguous()
            out[f"{prefix}.alpha"] = torch.tensor(adapter.alpha, dtype=dtype)
        else:
            suffix = "diff" if tensor_name == "weight" else "diff_b"
            out[f"{prefix}.{suffix}"] = adapter.diff.detach().to(dtype).contiguous()
    return out


@contextlib.contextmanager
def attached(unet: nn.Module, adapters: Mapping[str, nn.Module]) -> Iterator[None]:
    """The adapters parametrize the UNet's tensors for the block; the UNet's own parameters are
    frozen meanwhile. Afterwards every tensor is the original object again, untouched."""
    frozen = [(p, p.requires_grad) for p in unet.parameters()]
    for parameter, _ in frozen:
        parameter.requires_grad_(False)
    done: list[tuple[nn.Module, str]] = []
    try:
        for key, adapter in adapters.items():
            module_name, _, tensor_name = key.rpartition(".")
            module = unet.get_submodule(module_name)
            if getattr(module, "weight_stream", None) is not None:
                raise RuntimeError("LoRA training needs the whole UNet on the compute device, "
                                   "but the memory manager streams its layers")
            parametrize.register_parametrization(module, tensor_name, adapter)
            done.append((module, tensor_name))
        yield
    finally:
        for module, tensor_name in reversed(done):
            parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=False)
        for parameter, flag in frozen:
            parameter.requires_grad_(flag)


# --------------------------------------------------------------------------- checkpointing

def modules_at_depth(root: nn.Module, depth: int) -> list[nn.Module]:
    """ComfyUI's checkpointing depth: count only modules with a forward of their own (not
    ``ModuleList`` / ``Sequential`` / ``ModuleDict``) from the root, which is depth 1."""
    containers = (nn.ModuleList, nn.Sequential, nn.ModuleDict)
    found: list[nn.Module] = []

    def walk(module: nn.Module, level: int) -> None:
        if not isinstance(module, containers):
            level += 1
            if level == depth:
                found.append(module)
                return
        for child in module.children():
            walk(child, level)

    walk(root, 0)
    return found


@contextlib.contextmanager
def checkpointed(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Recompute the modules' activations in the backward pass instead of keeping them. Each
    module's ``forward`` is shadowed by an instance attribute for the block only (the modules
    belong to a UNet other handles share), and the class's forward is back afterwards."""
    shadowed: list[tuple[nn.Module, Any]] = []
    try:
        for module in modules:
            original = module.forward

            def run(*args, _original=original, **kwargs):
                return torch.utils.checkpoint.checkpoint(_original, *args, use_reentrant=False, **kwargs)

            shadowed.append((module, module.__dict__.get("forward")))
            module.forward = run
        yield
    finally:
        for module, own in reversed(shadowed):
            if own is None:
                del module.forward
            else:
                module.forward = own


# --------------------------------------------------------------------------- the loop

def _batched_inputs(conds: Sequence[ModelInputs]) -> dict[str, Tensor]:
    """One model-input dict for a batch, each sample's inputs concatenated on the batch axis."""
    names = conds[0].keys()
    return {name: type(conds[0][name]).concat([c[name].process(1, None) for c in conds]) for name in names}


class _Step:
    """Forward and loss of one (micro-)batch."""

    def __init__(self, denoiser: UNetDenoiser, sampling: ModelSampling, criterion: nn.Module,
                 config: LoraTraining, device: torch.device, generator: torch.Generator):
        self.denoiser, self.sampling, self.criterion = denoiser, sampling, criterion
        self.config, self.device, self.generator = config, device, generator

    def sigmas(self, count: int) -> Tensor:
        percents = torch.rand(count, generator=self.generator).tolist()
        return torch.tensor([self.sampling.percent_to_sigma(p) for p in percents], device=self.device)

    def loss(self, latent: Tensor, conds: Sequence[ModelInputs], noise_seed: int) -> Tensor:
        noise = prepare_noise(latent.cpu(), noise_seed).to(self.device)
        latent = latent.to(self.device)
        sigma = self.sigmas(latent.shape[0])
        noised = self.sampling.noise_scaling(sigma, noise, latent, False)
        inputs = {k: v.to(self.device) for k, v in _batched_inputs(conds).items()}
        with autocast(self.config.training_dtype, self.device):
            predicted = self.denoiser(noised, sigma, inputs)
            return self.criterion(predicted, latent.to(predicted.dtype))


def _draw_group(data: TrainingData, generator: torch.Generator) -> int:
    if not data.bucketed:
        return 0
    sizes = torch.tensor([float(group.shape[0]) for group in data.groups])
    return int(torch.multinomial(sizes, 1, generator=generator))


def train_lora(unet: nn.Module, sampling: ModelSampling, data: TrainingData, config: LoraTraining, *,
               existing: Mapping[str, LoraAdapter | DiffAdapter] | None = None, device: torch.device | None = None,
               on_step: Callable[[int, int], None] | None = None) -> TrainedLora:
    """Train a LoRA on ``unet`` (a CompVis UNet, resident on ``device``) and return its tensors
    and the loss of every micro-step. ``on_step(done, total)`` is called after each micro-step
    (and may raise to stop the run)."""
    device = torch.device(device or "cpu")
    generator = torch.Generator().manual_seed(config.seed)
    adapters = build_adapters(unet, config.rank, generator, existing)
    for adapter in adapters.values():
        adapter.to(device=device, dtype=config.lora_dtype)
    parameters = [p for adapter in adapters.values() for p in adapter.parameters()]
    optimizer = OPTIMIZERS[config.optimizer](parameters, lr=config.learning_rate)
    step = _Step(UNetDenoiser(unet, sampling), sampling, LOSSES[config.loss_function](), config, device, generator)
    offsets = [0]
    for group in data.groups:
        offsets.append(offsets[-1] + group.shape[0])
    total = config.steps * config.grad_accumulation_steps
    losses: list[float] = []
    regions = modules_at_depth(unet, config.checkpoint_depth) if config.gradient_checkpointing else []
    with attached(unet, adapters), checkpointed(regions), torch.inference_mode(False), torch.enable_grad():
        for micro_step in range(total):
            noise_seed = config.seed + micro_step * NOISE_SEED_STRIDE
            if data.per_item:
                picked = torch.randperm(len(data.groups), generator=generator)[: config.batch_size].tolist()
                loss = sum(step.loss(data.groups[i], [data.conds[i]], noise_seed) for i in picked)
                loss = loss / config.grad_accumulation_steps / len(picked)
                loss.backward()
                losses.append(loss.item())
            else:
                index = _draw_group(data, generator)
                group = data.groups[index]
                picked = torch.randperm(group.shape[0], generator=generator)[: config.batch_size].tolist()
                conds = [data.conds[offsets[index] + i] for i in picked]
                loss = step.loss(group[picked], conds, noise_seed)
                (loss / config.grad_accumulation_steps).backward()
                losses.append(loss.item())
            if (micro_step + 1) % config.grad_accumulation_steps == 0:
                for parameter in parameters:
                    if parameter.grad is not None:
                        parameter.grad = parameter.grad.to(parameter.dtype)
                optimizer.step()
                optimizer.zero_grad()
            if on_step is not None:
                on_step(micro_step + 1, total)
    return TrainedLora(lora_state_dict(adapters, config.lora_dtype), losses)


def steps_in_file_name(name: str) -> int:
    """The step count in a trained LoRA's file name (``…_16_steps_00001_.safetensors``, as
    ``SaveLoRA`` names them); 0 when the name holds none."""
    found = re.search(r"(?:^|[_/])(\d+)_steps_", name)
    if found is None:
        log.info("existing LoRA %r: no '_<n>_steps_' in its name, counting its steps as 0", name)
        return 0
    return int(found.group(1))


def unet_inputs_for(conditioning: Sequence[Any], build: Callable[[dict, Any], ModelInputs],
                    context: Any) -> list[ModelInputs]:
    """Each ``[embedding, extras]`` pair of a conditioning list as the model inputs the family's
    builder makes of it (``c_crossattn``, SDXL's ``y``, …)."""
    return [build(dict(extras, cross_attn=embedding), context) for embedding, extras in conditioning]
