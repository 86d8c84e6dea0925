"""The sampler table: ComfyUI's sampler names → one function each, plus what each needs.

Dispatch is this explicit table, never by building function names from strings. A
:class:`SamplerSpec` records the facts the caller (:mod:`ldm.sampling.sample`) acts on:

- ``noise``: which noise source to build — ``None``, ``"step"`` (fresh draws,
  :class:`~ldm.sampling.noise.StepNoiseSampler`) or ``"brownian"``
  (:class:`~ldm.sampling.noise.BrownianNoiseSampler` over the schedule's range);
- ``discard_penultimate_sigma``: ComfyUI computes one step more for ``dpm_2``,
  ``dpm_2_ancestral``, ``uni_pc`` and ``uni_pc_bh2`` and drops the next-to-last sigma (these
  would otherwise spend their last, most expensive step on the smallest sigma);
- ``random_inpaint_noise``: ``ddim`` is Euler whose inpainting re-noise uses a separate draw
  (seed + 1) instead of the start noise, as ComfyUI's ``ddim`` entry does.

ComfyUI's ``*_gpu`` SDE names differ from the plain ones only in building the Brownian tree on
the sampling device instead of the CPU (see :mod:`ldm.sampling.noise`; on a CPU both give the
same numbers; ``noise_on_device`` marks them). ``dpmpp_2m_sde_heun`` is 2M SDE with the Heun
correction. The ``*_cfg_pp`` samplers and ``cfgpp_ud10_ab`` step along the unconditional
prediction (:mod:`ldm.sampling.samplers_cfgpp`); ``sa_solver`` reads the run's model sampling
from ``extra_args["model_sampling"]`` for its default SDE interval.

After ComfyUI's names come the paper's samplers, ``ddim_eta`` and ``plms``
(:mod:`ldm.sampling.samplers_compvis`); ``COMFYUI_SAMPLER_NAMES`` is ComfyUI's list alone.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Callable

from ldm.sampling.dpm_solver import sample_dpm_adaptive, sample_dpm_fast
from ldm.sampling.samplers_cfgpp import (sample_cfgpp_ud10_ab, sample_dpmpp_2m_cfg_pp,
                                         sample_dpmpp_2s_ancestral_cfg_pp, sample_euler_ancestral_cfg_pp,
                                         sample_euler_cfg_pp)
from ldm.sampling.samplers_compvis import sample_ddim_eta, sample_plms
from ldm.sampling.samplers_er_sde import sample_er_sde
from ldm.sampling.samplers_multistep import (sample_gradient_estimation, sample_gradient_estimation_cfg_pp,
                                             sample_res_multistep, sample_res_multistep_ancestral,
                                             sample_res_multistep_ancestral_cfg_pp, sample_res_multistep_cfg_pp)
from ldm.sampling.samplers_sa_solver import sample_sa_solver, sample_sa_solver_pece
from ldm.sampling.samplers_seeds import sample_exp_heun_2_x0, sample_exp_heun_2_x0_sde, sample_seeds_2, sample_seeds_3
from ldm.sampling.samplers_ode import (sample_deis, sample_dpm_2, sample_dpmpp_2m, sample_euler,
                                       sample_heun, sample_heunpp2, sample_ipndm, sample_ipndm_v,
                                       sample_lms)
from ldm.sampling.samplers_stochastic import (sample_ddpm, sample_dpm_2_ancestral,
                                              sample_dpmpp_2m_sde, sample_dpmpp_2s_ancestral,
                                              sample_dpmpp_3m_sde, sample_dpmpp_sde,
                                              sample_euler_ancestral, sample_lcm)
from ldm.sampling.unipc import sample_uni_pc, sample_uni_pc_bh2

SamplerFunction = Callable[..., object]


def sample_dpmpp_2m_sde_heun(model, x, sigmas, extra_args=None, callback=None, noise_sampler=None, **options):
    """DPM-Solver++(2M) SDE with the Heun correction of the second-order term."""
    return sample_dpmpp_2m_sde(model, x, sigmas, extra_args, callback, noise_sampler, solver_type="heun", **options)


@dataclass(frozen=True)
class SamplerSpec:
    function: SamplerFunction
    noise: str | None = None
    discard_penultimate_sigma: bool = False
    random_inpaint_noise: bool = False
    noise_on_device: bool = False


#: ComfyUI's samplers, in its order (``comfy.samplers.SAMPLER_NAMES``).
COMFYUI_SAMPLERS: dict[str, SamplerSpec] = {
    "euler": SamplerSpec(sample_euler),
    "euler_cfg_pp": SamplerSpec(sample_euler_cfg_pp),
    "euler_ancestral": SamplerSpec(sample_euler_ancestral, noise="step"),
    "euler_ancestral_cfg_pp": SamplerSpec(sample_euler_ancestral_cfg_pp, noise="step"),
    "heun": SamplerSpec(sample_heun),
    "heunpp2": SamplerSpec(sample_heunpp2),
    "exp_heun_2_x0": SamplerSpec(sample_exp_heun_2_x0),
    "exp_heun_2_x0_sde": SamplerSpec(sample_exp_heun_2_x0_sde, noise="step"),
    "dpm_2": SamplerSpec(sample_dpm_2, discard_penultimate_sigma=True),
    "dpm_2_ancestral": SamplerSpec(sample_dpm_2_ancestral, noise="step", discard_penultimate_sigma=True),
    "lms": SamplerSpec(sample_lms),
    "dpm_fast": SamplerSpec(sample_dpm_fast),
    "dpm_adaptive": SamplerSpec(sample_dpm_adaptive),
    "dpmpp_2s_ancestral": SamplerSpec(sample_dpmpp_2s_ancestral, noise="step"),
    "dpmpp_2s_ancestral_cfg_pp": SamplerSpec(sample_dpmpp_2s_ancestral_cfg_pp, noise="step"),
    "dpmpp_sde": SamplerSpec(sample_dpmpp_sde, noise="brownian"),
    "dpmpp_sde_gpu": SamplerSpec(sample_dpmpp_sde, noise="brownian", noise_on_device=True),
    "dpmpp_2m": SamplerSpec(sample_dpmpp_2m),
    "dpmpp_2m_cfg_pp": SamplerSpec(sample_dpmpp_2m_cfg_pp),
    "dpmpp_2m_sde": SamplerSpec(sample_dpmpp_2m_sde, noise="brownian"),
    "dpmpp_2m_sde_gpu": SamplerSpec(sample_dpmpp_2m_sde, noise="brownian", noise_on_device=True),
    "dpmpp_2m_sde_heun": SamplerSpec(sample_dpmpp_2m_sde_heun, noise="brownian"),
    "dpmpp_2m_sde_heun_gpu": SamplerSpec(sample_dpmpp_2m_sde_heun, noise="brownian", noise_on_device=True),
    "dpmpp_3m_sde": SamplerSpec(sample_dpmpp_3m_sde, noise="brownian"),
    "dpmpp_3m_sde_gpu": SamplerSpec(sample_dpmpp_3m_sde, noise="brownian", noise_on_device=True),
    "ddpm": SamplerSpec(sample_ddpm, noise="step"),
    "lcm": SamplerSpec(sample_lcm, noise="step"),
    "ipndm": SamplerSpec(sample_ipndm),
    "ipndm_v": SamplerSpec(sample_ipndm_v),
    "deis": SamplerSpec(sample_deis),
    "cfgpp_ud10_ab": SamplerSpec(sample_cfgpp_ud10_ab),
    "res_multistep": SamplerSpec(sample_res_multistep),
    "res_multistep_cfg_pp": SamplerSpec(sample_res_multistep_cfg_pp),
    "res_multistep_ancestral": SamplerSpec(sample_res_multistep_ancestral, noise="step"),
    "res_multistep_ancestral_cfg_pp": SamplerSpec(sample_res_multistep_ancestral_cfg_pp, noise="step"),
    "gradient_estimation": SamplerSpec(sample_gradient_estimation),
    "gradient_estimation_cfg_pp": SamplerSpec(sample_gradient_estimation_cfg_pp),
    "er_sde": SamplerSpec(sample_er_sde, noise="step"),
    "seeds_2": SamplerSpec(sample_seeds_2, noise="step"),
    "seeds_3": SamplerSpec(sample_seeds_3, noise="step"),
    "sa_solver": SamplerSpec(sample_sa_solver, noise="step"),
    "sa_solver_pece": SamplerSpec(sample_sa_solver_pece, noise="step"),
    "ddim": SamplerSpec(sample_euler, random_inpaint_noise=True),
    "uni_pc": SamplerSpec(sample_uni_pc, discard_penultimate_sigma=True),
    "uni_pc_bh2": SamplerSpec(sample_uni_pc_bh2, discard_penultimate_sigma=True),
}
#: The paper's own samplers (CompVis ``ddim.py`` with eta, ``plms.py``), which ComfyUI does not
#: offer (its ``ddim`` is Euler, i.e. eta = 0). Listed after ComfyUI's names so its order stays.
PAPER_SAMPLERS: dict[str, SamplerSpec] = {
    "ddim_eta": SamplerSpec(sample_ddim_eta, noise="step"),
    "plms": SamplerSpec(sample_plms),
}
SAMPLERS: dict[str, SamplerSpec] = {**COMFYUI_SAMPLERS, **PAPER_SAMPLERS}

COMFYUI_SAMPLER_NAMES = tuple(COMFYUI_SAMPLERS)
#: The names a KSampler offers: ComfyUI's, in its order, then Weft's additions.
SAMPLER_NAMES = tuple(SAMPLERS)
DISCARD_PENULTIMATE_SIGMA_SAMPLERS = frozenset(
    name for name, spec in SAMPLERS.items() if spec.discard_penultimate_sigma)


def get_sampler(name: str) -> SamplerSpec:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; expected one of {list(SAMPLER_NAMES)}")


def configured_sampler(name: str, **options: object) -> SamplerSpec:
    """The sampler ``name`` with some of its keyword options fixed (the sampler nodes' SAMPLER)."""
    spec = get_sampler(name)
    return dataclasses.replace(spec, function=functools.partial(spec.function, **options))
