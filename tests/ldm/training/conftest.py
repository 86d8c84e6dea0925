"""Tiny training runs for the tests: 16 x 16 scenes, the TINY architecture, a few steps."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ldm.data.shapes import ShapesDataset
from ldm.training.config import TINY, AutoencoderTraining, DiffusionTraining
from ldm.training.diffusion import encode_dataset
from ldm.training.init import new_autoencoder

FAST_AUTOENCODER = AutoencoderTraining(steps=4, batch_size=2, warmup_steps=1, discriminator_start=2,
                                       save_every=2, preview_every=4, precision="fp32")
FAST_DIFFUSION = DiffusionTraining(steps=4, batch_size=4, warmup_steps=1, save_every=2, preview_every=4,
                                   preview_steps=2, precision="fp32")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread; on a busy machine two threads wait on each other
    (measured: 17 s vs 3 s for the same 30 steps)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_scenes():
    return ShapesDataset(seed=0, length=32, size=TINY.image_size, partial_captions=0.1)


@pytest.fixture(scope="session")
def tiny_vae():
    return new_autoencoder(TINY.vae, seed=0).eval().requires_grad_(False)


@pytest.fixture(scope="session")
def tiny_latents(tiny_vae, tiny_scenes):
    return encode_dataset(tiny_vae, tiny_scenes, TINY.text.width, precision="fp32")


def fast(config, **changes):
    return dataclasses.replace(config, **changes)


class StopAt:
    """A progress callback that raises after step ``step``: an interrupted run."""

    class Stop(Exception):
        pass

    def __init__(self, step: int):
        self.step = step
        self.seen: list[int] = []

    def __call__(self, progress) -> None:
        self.seen.append(progress.step)
        if progress.step == self.step:
            raise StopAt.Stop()


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
