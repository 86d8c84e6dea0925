"""ER-SDE-Solver: the extended reverse-time SDE family solved in data prediction (Cui et al. 2023,
"Elucidating the solution space of extended reverse-time SDE for diffusion models",
arXiv:2309.06169; reference code QinpengCui/ER-SDE-Solver).

In the variance-exploding form (alpha = 1) the solver's time is sigma itself. A noise scaler
phi(sigma) picks the member of the family: phi(x) = x is the probability-flow ODE,
phi(x) = x² the reverse-time SDE, and the paper's default phi(x) = x·(e^{x^0.3} + 10) sits
between them.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ldm.sampling.noise import NoiseSampler
from ldm.sampling.sampler_common import Callback, Denoiser, batch_sigma, report, require_noise

NoiseScaler = Callable[[Tensor], Tensor]
#: Points of the Riemann sums of the stage-2 and stage-3 integrals, as the reference code.
INTEGRATION_POINTS = 200


def er_sde_noise_scaler(x: Tensor) -> Tensor:
    """The paper's ER-SDE noise scaler, x·(e^{x^0.3} + 10)."""
    return x * ((x ** 0.3).exp() + 10.0)


#: SamplerER_SDE's solver types.
SOLVER_TYPES = ("ER-SDE", "Reverse-time SDE", "ODE")


def noise_scaler_for(solver_type: str, eta: float) -> NoiseScaler:
    """The noise scaler of a solver type with stochasticity ``eta``: psi(x) = x^(1-eta)·phi(x)^eta
    for the type's phi (so eta = 0 is the ODE for every type)."""
    if solver_type == "ER-SDE":
        return lambda x: x * ((x ** 0.3).exp() + 10.0) ** eta
    if solver_type == "Reverse-time SDE":
        return lambda x: x ** (eta + 1)
    if solver_type == "ODE":
        return lambda x: x
    raise ValueError(f"unknown ER-SDE solver type {solver_type!r}; expected one of {list(SOLVER_TYPES)}")


@torch.no_grad()
def sample_er_sde(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                  callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                  s_noise: float = 1.0, noise_scaler: NoiseScaler | None = None, max_stage: int = 3) -> Tensor:
    """ER-SDE-Solver-3 with stages up to ``max_stage`` (Cui et al. 2023, arXiv:2309.06169)."""
    extra_args = extra_args or {}
    scaler = noise_scaler or er_sde_noise_scaler
    if s_noise > 0:
        noise_sampler = require_noise(noise_sampler, "er_sde")
    point_index = torch.arange(INTEGRATION_POINTS, dtype=torch.float32, device=x.device)
    old_denoised = old_denoised_d = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, batch_sigma(sigmas[i], x), **extra_args)
        report(callback, x, i, sigmas[i], sigmas[i], denoised)
        stage = min(max_stage, i + 1)
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            s, t = sigmas[i], sigmas[i + 1]
            r = scaler(t) / scaler(s)
            x = r * x + (1 - r) * denoised
            if stage >= 2:
                dt = t - s
                step = -dt / INTEGRATION_POINTS
                positions = t + point_index * step  # the step's interval, from t up towards s
                scaled = scaler(positions)
                integral_1 = torch.sum(1 / scaled) * step
                denoised_d = (denoised - old_denoised) / (s - sigmas[i - 1])
                x = x + (dt + integral_1 * scaler(t)) * denoised_d
                if stage >= 3:
                    integral_2 = torch.sum((positions - s) / scaled) * step
                    denoised_u = (denoised_d - old_denoised_d) / ((s - sigmas[i - 2]) / 2)
                    x = x + (dt ** 2 / 2 + integral_2 * scaler(t)) * denoised_u
                old_denoised_d = denoised_d
            if s_noise > 0:
                spread = (t ** 2 - s ** 2 * r ** 2).sqrt().nan_to_num(nan=0.0)
                x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * spread
        old_denoised = denoised
    return x
