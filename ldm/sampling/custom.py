"""The values ComfyUI's custom-sampling nodes pass between them, and the run that uses them.

- NOISE: :class:`RandomNoise` (seeded start noise, ComfyUI's draw) or :class:`DisabledNoise`
  (zeros); both offer ComfyUI's ``seed`` and ``generate_noise(latent_dict)``.
- SAMPLER: :class:`SamplerChoice`, a name of the sampler table.
- SIGMAS: a 1-D float32 tensor, decreasing, usually ending in 0 (as in ComfyUI).
- GUIDER: :class:`CFGGuidance` / :class:`DualCFGGuidance`: a MODEL handle and conditioning. The
  network is only lent for the length of a run, so a guider is *built* against the
  :class:`~ldm.sampling.guidance.GuidedModel` of that run (:meth:`CFGGuidance.build`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor

from ldm.sampling.dual_cfg import DualCFGGuider
from ldm.sampling.guidance import CFGGuider, Conditioning, GuidedModel
from ldm.sampling.noise import prepare_noise
from ldm.sampling.sample import StepCallback, sample_with_sigmas
from ldm.sampling.samplers import SamplerSpec, get_sampler


@dataclass(frozen=True)
class RandomNoise:
    seed: int

    def generate_noise(self, latent: Mapping[str, Any]) -> Tensor:
        """ComfyUI's start noise for the LATENT dict (one draw per ``batch_index`` entry)."""
        return prepare_noise(latent["samples"], self.seed, latent.get("batch_index"))


@dataclass(frozen=True)
class DisabledNoise:
    seed: int = 0

    def generate_noise(self, latent: Mapping[str, Any]) -> Tensor:
        samples = latent["samples"]
        return torch.zeros(samples.shape, dtype=samples.dtype)


@dataclass(frozen=True)
class SamplerChoice:
    """A SAMPLER: a sampler of the table by name, or (``spec``) a function a node pack brought."""

    name: str
    spec: SamplerSpec | None = None

    def __post_init__(self) -> None:
        if self.spec is None:
            get_sampler(self.name)  # unknown names fail here, at the node that chose them


@dataclass(frozen=True, eq=False)  # holds tensors: compared by identity
class CFGGuidance:
    """CFG over positive / negative conditioning (CFGGuider); BasicGuider is positive only, cfg 1."""

    model: Any  # ldm.model.ModelHandle
    positive: Conditioning
    negative: Conditioning = ()
    cfg: float = 1.0

    def build(self, guided: GuidedModel) -> CFGGuider:
        return CFGGuider(guided, list(self.positive), list(self.negative), self.cfg)


@dataclass(frozen=True, eq=False)
class DualCFGGuidance:
    model: Any
    cond1: Conditioning
    cond2: Conditioning
    negative: Conditioning
    cfg_conds: float
    cfg_cond2_negative: float
    nested: bool = False

    def build(self, guided: GuidedModel) -> DualCFGGuider:
        return DualCFGGuider(guided, list(self.cond1), list(self.cond2), list(self.negative), self.cfg_conds,
                             self.cfg_cond2_negative, self.nested)


def sample_custom(guider: CFGGuider | DualCFGGuider, sampler: SamplerChoice, sigmas: Tensor, noise: Tensor,
                  latent: Mapping[str, Any], seed: int, callback: StepCallback | None = None,
                  device: torch.device | str = "cpu") -> tuple[dict, dict]:
    """SamplerCustom(Advanced): ``(output, denoised_output)`` LATENT dicts.

    ``denoised_output`` holds the model's last x0 prediction (raw latent space); when no step
    ran it is the output itself.
    """
    last: dict[str, Tensor] = {}

    def on_step(info: dict[str, Any]) -> None:
        last["x0"] = info["denoised"]
        if callback is not None:
            callback(info)

    samples = sample_with_sigmas(guider, sampler.spec or sampler.name, sigmas, noise, latent["samples"], latent.get("noise_mask"),
                                 seed, on_step, device)
    out = dict(latent, samples=samples)
    if "x0" not in last:
        return out, out
    denoised = guider.model.process_latent_out(last["x0"].float()).cpu()
    return out, dict(latent, samples=denoised)
