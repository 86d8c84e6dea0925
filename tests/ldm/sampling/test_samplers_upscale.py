"""ldm.sampling.samplers_upscale: LCM steps that enlarge the latent (ComfyUI's SamplerLCMUpscale)."""

import pytest
import torch

from ldm.sampling.samplers_upscale import sample_lcm_upscale, upscale_factors


@pytest.mark.parametrize("sigma_count,upscale_steps,factors", [
    (5, None, [1.5, 2.0]),                 # about half the steps, at least 2 points
    (9, None, [1.25, 1.5, 1.75, 2.0]),
    (5, 1, [2.0]),
    (3, 10, [4 / 3, 5 / 3, 2.0]),           # no more points than sigmas + 1
])
def test_upscale_factors(sigma_count, upscale_steps, factors):
    assert upscale_factors(sigma_count, 2.0, upscale_steps) == pytest.approx(factors)


def test_each_step_jumps_to_x0_resizes_and_renoises():
    sigmas = torch.tensor([4.0, 2.0, 1.0, 0.5, 0.0])
    shapes, inputs = [], []

    def denoiser(x, sigma, **extra):
        shapes.append(x.shape[-1])
        inputs.append(x)
        return torch.full_like(x, 0.25)  # a constant x0: resizing keeps it constant

    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 4
    out = sample_lcm_upscale(denoiser, x, sigmas, extra_args={"seed": 3}, total_upscale=2.0,
                             upscale_method="bilinear")
    assert shapes == [8, 12, 16, 16] and out.shape == (1, 4, 16, 16)
    torch.testing.assert_close(out, torch.full_like(out, 0.25))  # the last step lands on x0
    # between steps: x0 plus noise of the next sigma
    for sigma, state in zip(sigmas[1:4], inputs[1:]):
        assert float((state - 0.25).std()) == pytest.approx(float(sigma), rel=0.2)
    again = sample_lcm_upscale(denoiser, x, sigmas, extra_args={"seed": 3}, upscale_method="bilinear")
    torch.testing.assert_close(again, out)
