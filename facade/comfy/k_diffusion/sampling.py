"""``comfy.k_diffusion.sampling``: Weft's samplers with k-diffusion's calling convention.

Packs call ``sample_<name>(model, x, sigmas, extra_args=…, callback=…, disable=…, **options)`` and
expect a sampler that injects noise to build its own noise source from ``extra_args["seed"]``
when none is given (ComfyUI's ``default_noise_sampler`` / ``BrownianTreeNoiseSampler``). Each
function here is the table entry of :mod:`ldm.sampling.samplers` behind that convention.
"""

from __future__ import annotations

import inspect

import torch

from ldm.sampling import schedulers
from ldm.sampling.noise import BrownianNoiseSampler, StepNoiseSampler
from ldm.sampling.sampler_common import ancestral_step, to_d  # noqa: F401  (re-exported names)
from ldm.sampling.samplers import SAMPLERS, SamplerSpec


def append_zero(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, x.new_zeros([1])])


def get_sigmas_karras(n, sigma_min, sigma_max, rho=7.0, device="cpu"):
    return schedulers.karras_sigmas(n, float(sigma_min), float(sigma_max), rho).to(device)


def get_sigmas_exponential(n, sigma_min, sigma_max, device="cpu"):
    return schedulers.exponential_sigmas(n, float(sigma_min), float(sigma_max)).to(device)


def get_ancestral_step(sigma_from, sigma_to, eta=1.0):
    return ancestral_step(sigma_from, sigma_to, eta)


def default_noise_sampler(x: torch.Tensor, seed: int | None = None):
    """Fresh normal noise per call: seeded as ComfyUI seeds it, or from the global generator."""
    if seed is None:
        return lambda sigma=None, sigma_next=None: torch.randn_like(x)
    return StepNoiseSampler(x, seed, on_device=True)


class BrownianTreeNoiseSampler(BrownianNoiseSampler):
    """ComfyUI's constructor order ``(x, sigma_min, sigma_max, seed=None, transform=…, cpu=False)``
    over Weft's torchsde-based tree."""

    def __init__(self, x, sigma_min, sigma_max, seed=None, transform=None, cpu=False):
        seed = int(torch.randint(0, 2 ** 63 - 1, ()).item()) if seed is None else seed
        super().__init__(x, sigma_min, sigma_max, seed, transform=transform or (lambda sigma: sigma),
                         on_device=not cpu)


def _k_diffusion_entry(name: str, spec: SamplerSpec):
    accepted = set(inspect.signature(spec.function).parameters)

    def sample(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None, **options):
        extra_args = dict(extra_args or {})
        seed = extra_args.get("seed")
        if noise_sampler is None and spec.noise == "step":
            noise_sampler = default_noise_sampler(x, seed)
        elif noise_sampler is None and spec.noise == "brownian":
            positive = sigmas[sigmas > 0]
            noise_sampler = BrownianTreeNoiseSampler(x, positive.min(), sigmas.max(), seed,
                                                     cpu=not name.endswith("_gpu"))
        kwargs = {key: value for key, value in options.items() if key in accepted}
        return spec.function(model, x, sigmas, extra_args=extra_args, callback=callback,
                             noise_sampler=noise_sampler, **kwargs)

    sample.__name__ = sample.__qualname__ = f"sample_{name}"
    sample.__doc__ = spec.function.__doc__
    return sample


# sample_euler, sample_dpmpp_2m_sde, … one module attribute per table entry (the names ComfyUI's
# k_diffusion module has; ddim and the *_gpu variants are KSampler names, not functions there).
for _name, _spec in SAMPLERS.items():
    if _name != "ddim" and not _name.endswith("_gpu"):
        globals()[f"sample_{_name}"] = _k_diffusion_entry(_name, _spec)
del _name, _spec
