"""Sampling: noise schedules, model sampling (eps / v), samplers, noise, guidance, KSampler.

Modules, each with one job:

- :mod:`.model_sampling` — discrete SD schedules, sigma ↔ timestep, eps / v conversions;
- :mod:`.schedulers` — ComfyUI's scheduler names → sigma sequences;
- :mod:`.samplers` — ComfyUI's sampler names → sampler functions (in ``samplers_ode``,
  ``samplers_stochastic``, ``dpm_solver``, ``unipc``);
- :mod:`.noise` — seeded start noise, step noise and Brownian noise;
- :mod:`.guidance` and :mod:`.model_conds` — classifier-free guidance over conditioning lists;
- :mod:`.sample` — the entry points a KSampler node calls.
"""
