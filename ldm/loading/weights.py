"""Putting checkpoint tensors into a model built on the meta device, by name.

Module attribute names equal checkpoint keys, so loading is ``load_state_dict(assign=True)``: the
model adopts the (memory-mapped) tensors themselves, in their storage dtype, with no copy. What
does not match is reported by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class WeightsError(ValueError):
    """Weights that do not fit the model built for them."""


@dataclass(frozen=True)
class LoadReport:
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]


def strip_prefix(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix``, with the prefix removed (an empty prefix keeps everything)."""
    if not prefix:
        return dict(state_dict)
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def adopt_weights(module: nn.Module, state_dict: dict[str, torch.Tensor], *, what: str = "model",
                  allow_unexpected: bool = False) -> LoadReport:
    """Give ``module`` the tensors of ``state_dict`` by name; raise :class:`WeightsError` on a mismatch.

    Missing weights are always an error (they would stay on the meta device); unexpected ones are
    an error unless ``allow_unexpected``. Shapes are checked before anything is assigned.
    """
    own = module.state_dict(keep_vars=True)
    wrong_shape = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                   for k, v in state_dict.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    missing = tuple(sorted(set(own) - set(state_dict)))
    unexpected = tuple(sorted(set(state_dict) - set(own)))
    problems = []
    if wrong_shape:
        problems.append("shape mismatch: " + "; ".join(wrong_shape[:5]))
    if missing:
        problems.append(f"{len(missing)} missing weights, e.g. {', '.join(missing[:5])}")
    if unexpected and not allow_unexpected:
        problems.append(f"{len(unexpected)} unexpected weights, e.g. {', '.join(unexpected[:5])}")
    if problems:
        raise WeightsError(f"{what}: " + "; ".join(problems))
    module.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=False, assign=True)
    module.requires_grad_(False)
    module.eval()
    return LoadReport(missing=missing, unexpected=unexpected)


def random_weights(module: nn.Module, generator: torch.Generator,
                   dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Random weights for every parameter of ``module`` (works on a meta-device module).

    Matrices and kernels ~ N(0, 1/fan_in) so activations keep their scale through a tiny net;
    norm scales ~ 1 + N(0, 0.1^2); biases ~ N(0, 0.05^2).
    """
    weights: dict[str, torch.Tensor] = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        shape = tuple(tensor.shape)
        noise = torch.randn(shape, generator=generator)
        if len(shape) >= 2:
            fan_in = 1
            for d in shape[1:]:
                fan_in *= d
            value = noise / fan_in ** 0.5
        elif name.endswith("weight"):  # GroupNorm / LayerNorm scale
            value = 1.0 + 0.1 * noise
        else:
            value = 0.05 * noise
        weights[name] = value.to(dtype)
    return weights
