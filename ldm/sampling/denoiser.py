"""The adapter from a network to the denoiser samplers call: ``apply_model(x, sigma, c) -> x0``.

``x`` is the sampler's state in sigma space (``x0 + sigma·n``, ``[B, C, h, w]``), ``sigma`` a
``[B]`` tensor, and ``c`` the model inputs the guidance layer prepared for this batch:
``{"c_crossattn": [B, tokens, dim], "y"?: [B, adm], "c_concat"?: [B, C', h, w],
"transformer_options"?: ComfyUI's UNet patches plus the batch's cond_or_uncond and sigmas,
"control"?: ControlNet residuals}``. The
adapter applies the parameterisation at the boundary (k-diffusion's CompVis wrapper, ComfyUI's
``BaseModel.apply_model``), so no sampler ever branches on eps versus v.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import Tensor

from ldm.sampling.model_sampling import ModelSampling

#: A network in the CompVis layout: ``unet(x, timesteps, context=None, y=None, **kw)`` returning
#: the raw prediction (eps or v), as ``ldm.model.ModelHandle.unet`` does.
UNet = Callable[..., Tensor]
#: What the guidance layer calls: sigma-space x, ``[B]`` sigma, model-input dict → x0.
ApplyModel = Callable[[Tensor, Tensor, Mapping[str, Any]], Tensor]


@dataclass(frozen=True)
class UNetDenoiser:
    """Wrap a UNet of a given :class:`ModelSampling` as an :data:`ApplyModel`.

    The network sees ``c_in·x`` (with ``c_concat`` appended on the channel axis, e.g. the
    inpainting models' mask and masked latent), the nearest discrete timestep of ``sigma`` (as
    ComfyUI feeds it), ``context = c_crossattn``, ``y`` and ``transformer_options``; its output
    is cast to float32 before the eps / v conversion, so reduced-precision networks still sample
    in float32.
    """

    unet: UNet
    sampling: ModelSampling

    def __call__(self, x: Tensor, sigma: Tensor, c: Mapping[str, Any] | None = None) -> Tensor:
        c = c or {}
        x_in = self.sampling.calculate_input(sigma, x)
        if c.get("c_concat") is not None:
            x_in = torch.cat([x_in, c["c_concat"].to(x_in)], dim=1)
        kwargs = {}
        if c.get("c_crossattn") is not None:
            kwargs["context"] = c["c_crossattn"]
        if c.get("y") is not None:
            kwargs["y"] = c["y"]
        if c.get("transformer_options") is not None:
            kwargs["transformer_options"] = c["transformer_options"]
        if c.get("control") is not None:
            kwargs["control"] = c["control"]
        timesteps = self.sampling.timestep(sigma).float()
        output = self.unet(x_in, timesteps, **kwargs).float()
        return self.sampling.calculate_denoised(sigma, output, x)
