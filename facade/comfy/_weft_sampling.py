"""What ``comfy.sample`` and ``comfy.samplers`` share: the engine's UNet for a run, and ComfyUI's
step callback ``callback(step, x0, x, total_steps)`` over Weft's step reports."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from _weft_binding import host
from graph.context import check_interrupted
from ldm.sampling.from_handle import guided_model
from ldm.sampling.guidance import GuidedModel


@contextlib.contextmanager
def guided_run(model, latent_shape=None) -> Iterator[GuidedModel]:
    """The MODEL's GuidedModel for one run, its UNet lent by the server's engine; with the
    latents' ``latent_shape`` the engine keeps room for the activations (and refuses the run with
    an AdmissionError when they cannot fit)."""
    shape = None if latent_shape is None else tuple(latent_shape)
    with host().services.engine.use_unet(model, latent_shape=shape) as unet:
        yield guided_model(model, unet)


def step_reporter(callback: Callable | None) -> Callable[[dict[str, Any]], None]:
    """Weft's per-step report → the interrupt check and a ComfyUI-style callback."""

    def on_step(info: dict[str, Any]) -> None:
        check_interrupted()
        if callback is not None:
            callback(info["i"], info["denoised"], info["x"], info["total_steps"])

    return on_step
