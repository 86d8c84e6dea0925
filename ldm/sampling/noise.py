"""Where every random number of sampling comes from: seeded generators, never the global RNG.

Three sources, all deterministic for a given seed:

- :func:`prepare_noise` — the initial latent noise, exactly as ComfyUI draws it: a CPU
  generator seeded with ``seed``, ``torch.randn`` in the latent's shape and dtype (float32), on
  the CPU. Bit-identical to ``torch.manual_seed(seed); torch.randn(shape)``, on any machine, so
  a seed gives the same start noise as ComfyUI whatever device samples afterwards.
- :class:`StepNoiseSampler` — the fresh noise of ancestral samplers (one draw per step). By
  default a CPU generator seeded with ``seed + 1``, which is what ComfyUI does when it samples on
  the CPU; ``on_device=True`` draws on the latent's device instead, as ComfyUI does on a GPU.
- :class:`BrownianNoiseSampler` — the Brownian increments of the SDE samplers (dpmpp_sde,
  dpmpp_2m_sde, dpmpp_3m_sde and their ``_gpu`` / ``_heun`` names): torchsde's
  ``BrownianTree`` built as ComfyUI builds it (:func:`brownian_noise_sampler`), so SDE samples
  equal ComfyUI's for the same seed.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import torch
import torchsde
from torch import Tensor

NoiseSampler = Callable[[Tensor, Tensor], Tensor]  # (sigma, sigma_next) -> unit-variance noise

_MASK64 = (1 << 64) - 1


def cpu_generator(seed: int) -> torch.Generator:
    """A fresh CPU generator in the state ``torch.manual_seed(seed)`` puts the global one in."""
    return torch.Generator(device="cpu").manual_seed(seed & _MASK64)


def prepare_noise(latent: Tensor, seed: int, batch_index: Sequence[int] | None = None) -> Tensor:
    """The initial noise of a latent batch, ComfyUI's ``prepare_noise``.

    Without ``batch_index``: one ``randn`` of the whole latent's shape. With it (a LATENT's
    ``batch_index`` list, e.g. after "Latent From Batch"), noise is drawn item by item, one
    ``[1, C, h, w]`` draw for every index 0 … max(batch_index) in turn, and item k of the output
    is the draw numbered ``batch_index[k]``. So a batch of 4 and the single latent picked out of
    it with ``batch_index=[2]`` get the same noise for that image; indices may skip (draws in
    between are made and discarded) and repeat (repeats share a draw).
    """
    generator = cpu_generator(seed)
    if batch_index is None:
        return torch.randn(latent.shape, dtype=latent.dtype, generator=generator, device="cpu")
    wanted = sorted(set(int(i) for i in batch_index))
    item_shape = [1] + list(latent.shape[1:])
    draws: dict[int, Tensor] = {}
    for index in range(wanted[-1] + 1):
        draw = torch.randn(item_shape, dtype=latent.dtype, generator=generator, device="cpu")
        if index in wanted:
            draws[index] = draw
    return torch.cat([draws[int(i)] for i in batch_index], dim=0)


class StepNoiseSampler:
    """Independent standard-normal noise shaped like ``like``, one draw per call."""

    def __init__(self, like: Tensor, seed: int, on_device: bool = False):
        self.shape = like.shape
        self.dtype = like.dtype
        self.device = like.device
        # ComfyUI's default_noise_sampler offsets the seed by one on the CPU only (so CPU step
        # noise does not repeat the start noise); on a GPU it seeds that device's generator
        # with the seed itself.
        on_cpu = not on_device or like.device.type == "cpu"
        gen_device = torch.device("cpu") if on_cpu else like.device
        self.generator = torch.Generator(device=gen_device).manual_seed(
            (seed + 1 if on_cpu else seed) & _MASK64)

    def __call__(self, sigma: Tensor | None = None, sigma_next: Tensor | None = None) -> Tensor:
        noise = torch.randn(self.shape, dtype=torch.float32, generator=self.generator,
                            device=self.generator.device)
        return noise.to(device=self.device, dtype=self.dtype)


def _ordered(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, int]:
    """``(low, high, sign)``: sign is +1 when ``a < b`` and -1 otherwise (ties count as -1, as
    in k-diffusion's ``BatchedBrownianTree.sort``)."""
    return (a, b, 1) if a < b else (b, a, -1)


class BrownianNoiseSampler:
    """Unit-variance increments of one Brownian path W, t = transform(sigma): ComfyUI's
    ``BrownianTreeNoiseSampler`` built on torchsde's ``BrownianTree``.

    Built the way ComfyUI builds it, so the same seed gives the same numbers:

    - one ``torchsde.BrownianTree(t_lo, w0, t_hi, entropy=seed)`` for the whole batch (ComfyUI
      passes the integer seed, not one seed per item), ``w0 = zeros_like(like)`` so the path has
      the latent's shape and dtype, torchsde's defaults otherwise (``tol=1e-6``,
      ``pool_size=24``, the halfway tree);
    - ``t_lo, t_hi`` are ``transform(sigma_min)``, ``transform(sigma_max)``, in order;
    - ``on_device=False`` (ComfyUI's plain SDE names, ``cpu=True``) keeps the tree on the CPU,
      queried with float32 times, and moves the noise to the sigma's device; ``on_device=True``
      (the ``*_gpu`` names) builds it on ``like``'s device, whose generator gives other numbers
      on a GPU.

    ``__call__(sigma, sigma_next)`` returns ``(W(t_next) - W(t)) / sqrt(|t_next - t|)`` in the
    sigmas' dtype and device. torchsde splits its tree at the times queried, so the numbers
    depend on the sequence of queries too: a sampler reproduces ComfyUI's when it asks for the
    same (sigma, sigma_next) pairs in the same order, which Weft's SDE samplers do.
    """

    def __init__(self, like: Tensor, sigma_min: float | Tensor, sigma_max: float | Tensor, seed: int,
                 transform: Callable[[Tensor], Tensor] = lambda sigma: sigma, on_device: bool = False):
        self.transform = transform
        self.on_device = on_device
        t_lo, t_hi, self._sign = _ordered(transform(torch.as_tensor(sigma_min)),
                                          transform(torch.as_tensor(sigma_max)))
        w0 = torch.zeros_like(like)
        if not on_device:
            t_lo, w0, t_hi = t_lo.detach().cpu(), w0.detach().cpu(), t_hi.detach().cpu()
        self.tree = torchsde.BrownianTree(t_lo, w0, t_hi, entropy=int(seed) & _MASK64)

    def __call__(self, sigma: Tensor, sigma_next: Tensor) -> Tensor:
        t0 = self.transform(torch.as_tensor(sigma))
        t1 = self.transform(torch.as_tensor(sigma_next))
        lo, hi, sign = _ordered(t0, t1)
        device, dtype = lo.device, lo.dtype
        if not self.on_device:
            lo, hi = lo.detach().cpu().float(), hi.detach().cpu().float()
        with warnings.catch_warnings():
            # torchsde stores the tree's ends rounded to its tolerance (6 digits) and warns, then
            # clamps, when the schedule's own top or bottom sigma lies just outside; ComfyUI gets
            # the same clamped numbers (and the warning).
            warnings.filterwarnings("ignore", message="Should have t", category=UserWarning)
            w = self.tree(lo, hi)
        w = w.to(device=device, dtype=dtype) * (self._sign * sign)
        return w / (t1 - t0).abs().sqrt()


def brownian_noise_sampler(x: Tensor, sigmas: Tensor, seed: int,
                           on_device: bool = False) -> BrownianNoiseSampler:
    """The noise source ComfyUI's SDE samplers build for themselves: a tree over
    [smallest positive sigma, largest sigma] of the schedule, seeded with the sampling seed
    (``extra_args["seed"]``, the KSampler's ``seed`` / the NOISE's ``noise_seed``)."""
    return BrownianNoiseSampler(x, sigmas[sigmas > 0].min(), sigmas.max(), seed, on_device=on_device)
