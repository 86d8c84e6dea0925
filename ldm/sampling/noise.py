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
  dpmpp_2m_sde, dpmpp_3m_sde). ComfyUI uses torchsde's ``BrownianTree``; torchsde is not a
  dependency of Weft, so this is our own Brownian tree (see the class). It has the properties
  the samplers rely on but different numbers, so SDE samples differ from ComfyUI's for the
  same seed.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable, Sequence

import torch
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


def _splitmix64(z: int) -> int:
    """SplitMix64's output function: a fast, well-mixed 64-bit hash (Steele et al. 2014)."""
    z = (z + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


class BrownianNoiseSampler:
    """Increments of one fixed Brownian path W on [t_lo, t_hi], t = transform(sigma).

    The path is a Brownian tree: W(t_lo) = 0, W(t_hi) ~ N(0, t_hi - t_lo), and the value at the
    midpoint of every dyadic interval is drawn from its Brownian bridge given the endpoints,
    ``(W(a) + W(b))/2 + sqrt(b - a)/2 · z``. Each ``z`` has its own generator, seeded from a
    hash of (seed, depth, index), so any W(t) is computed by walking down from the root and is
    the same whatever else was asked before. Below depth :attr:`depth` (intervals 2^-depth of
    the range wide) W is linear between the dyadic points; that is the tree's resolution.

    ``__call__(sigma, sigma_next)`` returns ``(W(t_next) - W(t)) / sqrt(|t_next - t|)``, unit
    variance, like k-diffusion's ``BrownianTreeNoiseSampler``; increments over disjoint
    intervals are independent and an interval's noise does not depend on how many steps the
    schedule has (only on seed and range), which is why SDE samplers use a tree and not fresh
    draws. Differences from torchsde's tree (what ComfyUI uses): other random numbers for the
    same seed, a fixed depth instead of a tolerance, and the path generated on the CPU in
    float32 always (ComfyUI's ``*_gpu`` samplers build theirs on the GPU).
    """

    depth = 20
    _cache_size = 64

    def __init__(self, like: Tensor, sigma_min: float, sigma_max: float, seed: int,
                 transform: Callable[[float], float] = lambda sigma: sigma):
        self.shape = like.shape
        self.dtype = like.dtype
        self.device = like.device
        self.transform = transform
        self.t_lo, self.t_hi = sorted((float(transform(float(sigma_min))),
                                       float(transform(float(sigma_max)))))
        self.seed = _splitmix64(seed & _MASK64)
        self._nodes: OrderedDict[tuple[int, int], Tensor] = OrderedDict()
        self._w_hi = self._normal(0, 0) * math.sqrt(self.t_hi - self.t_lo)

    def _normal(self, depth: int, index: int) -> Tensor:
        key = (depth, index)
        cached = self._nodes.get(key)
        if cached is not None:
            self._nodes.move_to_end(key)
            return cached
        node_seed = _splitmix64(_splitmix64(self.seed ^ depth) ^ index)
        z = torch.randn(self.shape, dtype=torch.float32, generator=cpu_generator(node_seed))
        self._nodes[key] = z
        if len(self._nodes) > self._cache_size:
            self._nodes.popitem(last=False)
        return z

    def _w(self, t: float) -> Tensor:
        """W(t) on the CPU, float32."""
        t = min(max(t, self.t_lo), self.t_hi)
        a, b = self.t_lo, self.t_hi
        w_a, w_b = torch.zeros(self.shape), self._w_hi
        index = 0
        for depth in range(1, self.depth + 1):
            if t == a:
                return w_a
            if t == b:
                return w_b
            mid = 0.5 * (a + b)
            w_mid = 0.5 * (w_a + w_b) + math.sqrt(b - a) * 0.5 * self._normal(depth, index)
            if t < mid:
                b, w_b, index = mid, w_mid, 2 * index
            else:
                a, w_a, index = mid, w_mid, 2 * index + 1
        return w_a + (w_b - w_a) * ((t - a) / (b - a))

    def __call__(self, sigma: Tensor, sigma_next: Tensor) -> Tensor:
        t0 = float(self.transform(float(sigma)))
        t1 = float(self.transform(float(sigma_next)))
        increment = (self._w(t1) - self._w(t0)) / math.sqrt(abs(t1 - t0))
        return increment.to(device=self.device, dtype=self.dtype)
