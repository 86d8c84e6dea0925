"""ldm.sampling.from_handle: a MODEL handle and a lent UNet → what ldm.sampling samples with."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from ldm.latent_formats import SD15, SDXL
from ldm.sampling.discrete_variants import discrete_model_sampling
from ldm.sampling.hooks import SamplingHooks
from ldm.sampling.from_handle import fix_empty_latent_channels, guided_model, model_sampling_of
from ldm.sampling.model_conds import inpaint_conds, sdxl_conds


class RecordingUNet:
    def __init__(self):
        self.calls = []

    def __call__(self, x, timesteps, context=None, y=None):
        self.calls.append({"x": x, "t": timesteps, "context": context, "y": y})
        return torch.zeros_like(x[:, :4])


def handle(family="sd1", prediction="eps", dtype=torch.float32, latent_format=SD15, **options):
    return SimpleNamespace(family=family, prediction=prediction, hooks=SamplingHooks.from_model_options(options),
                           latent_format=latent_format, device=torch.device("cpu"), dtype=dtype)


def test_family_sampling_or_the_patched_override():
    assert model_sampling_of(handle("sd2_v", "v")).prediction.name == "v"
    assert model_sampling_of(handle("sd_x4", "v")).sigmas[0] < 0.011  # x4 betas start at 1e-4
    override = discrete_model_sampling("sd1", "lcm")
    assert model_sampling_of(handle(model_sampling=override)) is override


def test_guided_model_wires_family_conds_latent_format_and_dtype():
    unet = RecordingUNet()
    model = guided_model(handle("sdxl", latent_format=SDXL, dtype=torch.bfloat16), unet)
    assert model.model_conds is sdxl_conds
    latent = torch.ones(1, 4, 2, 2)
    torch.testing.assert_close(model.process_latent_in(latent), latent * 0.13025)
    x = torch.randn(1, 4, 2, 2)
    out = model.apply_model(x, torch.tensor([1.0]), {"c_crossattn": torch.randn(1, 3, 8)})
    assert unet.calls[0]["x"].dtype == torch.bfloat16  # the network computes in the handle's dtype
    assert out.dtype == torch.float32  # sampling stays float32
    torch.testing.assert_close(out, x)  # eps = 0 → x0 = x
    assert guided_model(handle("sd1_inpaint"), unet).model_conds is inpaint_conds


def test_fix_empty_latent_channels():
    empty = torch.zeros(2, 4, 3, 3)
    assert fix_empty_latent_channels(empty, 4) is empty
    widened = fix_empty_latent_channels(empty, 16)
    assert widened.shape == (2, 16, 3, 3) and not widened.any()
    content = torch.ones(2, 4, 3, 3)
    assert fix_empty_latent_channels(content, 16) is content  # real latents are never reshaped


def test_an_empty_latent_is_fitted_to_the_models_channels_and_ratio():
    empty = torch.zeros(2, 4, 6, 9)
    assert fix_empty_latent_channels(empty, 3, 8, 4).shape == (2, 3, 12, 18)  # f8-made, f4 model
    assert fix_empty_latent_channels(empty, 4, 8, 8) is empty
    assert fix_empty_latent_channels(empty, 16).shape == (2, 16, 6, 9)  # no ratio said: channels only
    content = torch.ones(2, 4, 6, 9)
    assert fix_empty_latent_channels(content, 3, 8, 4) is content  # a latent with content is left alone
