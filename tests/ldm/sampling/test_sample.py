import pytest
import torch

from ldm.sampling.guidance import CFGGuider, GuidedModel
from ldm.sampling.model_sampling import model_sampling
from ldm.sampling.noise import prepare_noise
from ldm.sampling.sample import common_ksampler, ksampler_sigmas, sample_with_sigmas, slice_sigmas
from ldm.sampling.schedulers import calculate_sigmas

COND = [[torch.ones(1, 77, 8), {}]]
UNCOND = [[torch.zeros(1, 77, 8), {}]]


class ToyModel:
    """apply_model of the Gaussian toy (x0 ~ N(0.5, 0.5²)), counting calls and batch sizes."""

    def __init__(self, toy):
        self.toy = toy
        self.batches = []

    def __call__(self, x, sigma, c):
        self.batches.append(x.shape[0])
        return self.toy.denoiser(x, sigma)


@pytest.fixture
def toy_model(toy):
    return ToyModel(toy)


def guided(apply_model, **kwargs):
    return GuidedModel(apply_model=apply_model, sampling=model_sampling(), **kwargs)


def latent(batch=1, value=0.0):
    return {"samples": torch.full((batch, 4, 32, 32), value)}


def test_ksampler_sigmas_denoise_rule(sd_sampling):
    full = calculate_sigmas(sd_sampling, "karras", 20)
    torch.testing.assert_close(ksampler_sigmas(sd_sampling, "karras", "euler", 20, 1.0), full)
    torch.testing.assert_close(ksampler_sigmas(sd_sampling, "karras", "euler", 10, 0.5), full[-11:])
    # int(7 / 0.3) = 23 steps computed, the last 8 sigmas kept.
    torch.testing.assert_close(ksampler_sigmas(sd_sampling, "normal", "euler", 7, 0.3),
                               calculate_sigmas(sd_sampling, "normal", 23)[-8:])
    assert len(ksampler_sigmas(sd_sampling, "karras", "euler", 10, 0.0)) == 0


@pytest.mark.parametrize("name", ["dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"])
def test_ksampler_sigmas_discard_penultimate(sd_sampling, name):
    sigmas = ksampler_sigmas(sd_sampling, "karras", name, 10)
    longer = calculate_sigmas(sd_sampling, "karras", 11)
    assert len(sigmas) == 11
    torch.testing.assert_close(sigmas, torch.cat([longer[:-2], longer[-1:]]))


def test_slice_sigmas_for_ksampler_advanced():
    sigmas = torch.linspace(10, 0, 11)
    torch.testing.assert_close(slice_sigmas(sigmas, 0, 4, force_full_denoise=False), sigmas[:5])
    ended = slice_sigmas(sigmas, 0, 4, force_full_denoise=True)
    assert float(ended[-1]) == 0.0 and float(sigmas[4]) == 6.0  # input untouched
    torch.testing.assert_close(slice_sigmas(sigmas, 4, 10000), sigmas[4:])
    assert slice_sigmas(sigmas, 10, 10000) is None
    torch.testing.assert_close(slice_sigmas(sigmas, 2, 10000, force_full_denoise=True), sigmas[2:])


def test_txt2img_samples_the_data_distribution_and_follows_the_seed(toy_model):
    model = guided(toy_model)
    args = dict(steps=30, cfg=1.0, sampler_name="dpmpp_2m", scheduler="karras", positive=COND, negative=UNCOND)
    first = common_ksampler(model, 3, latent=latent(), **args)["samples"]
    assert first.dtype == torch.float32 and first.device.type == "cpu"
    assert abs(float(first.mean()) - 0.5) < 0.05 and abs(float(first.std()) / 0.5 - 1) < 0.05
    assert torch.equal(first, common_ksampler(model, 3, latent=latent(), **args)["samples"])
    assert not torch.equal(first, common_ksampler(model, 4, latent=latent(), **args)["samples"])
    # cfg = 1 means one model call per step, of batch 1.
    assert toy_model.batches[:30] == [1] * 30


def test_cfg_above_one_batches_cond_and_uncond(toy_model):
    common_ksampler(guided(toy_model), 0, 5, 6.0, "euler", "karras", COND, UNCOND, latent())
    assert toy_model.batches == [2] * 5


def test_start_noise_is_the_seeds_and_scaled_to_sigma_max(toy_model):
    seen = []
    common_ksampler(guided(toy_model), 11, 4, 1.0, "euler", "karras", COND, UNCOND, latent(),
                    callback=seen.append)
    sigma_max = float(model_sampling().sigma_max)
    expected = prepare_noise(torch.zeros(1, 4, 32, 32), 11) * (1 + sigma_max ** 2) ** 0.5
    torch.testing.assert_close(seen[0]["x"], expected)
    assert [s["i"] for s in seen] == [0, 1, 2, 3] and seen[0]["total_steps"] == 4


def test_batch_index_reproduces_a_single_image(toy_model):
    model = guided(toy_model)
    args = dict(steps=6, cfg=1.0, sampler_name="euler", scheduler="normal", positive=COND, negative=UNCOND)
    batch = common_ksampler(model, 5, latent=latent(batch=3), **args)["samples"]
    single = common_ksampler(model, 5, latent={**latent(), "batch_index": [2]}, **args)["samples"]
    # Same start noise for item 2 either way; a deterministic sampler then gives the same image.
    # (Ancestral samplers draw step noise for the whole batch at once, as ComfyUI does, so
    # there only the start noise matches.)
    torch.testing.assert_close(single[0], batch[2])


def test_denoise_zero_and_late_start_return_the_input(toy_model):
    source = latent(value=0.25)
    out = common_ksampler(guided(toy_model), 0, 10, 1.0, "euler", "karras", COND, UNCOND, source, denoise=0.0)
    assert torch.equal(out["samples"], source["samples"]) and toy_model.batches == []
    out = common_ksampler(guided(toy_model), 0, 10, 1.0, "euler", "karras", COND, UNCOND, source,
                          start_step=10, last_step=10000)
    assert torch.equal(out["samples"], source["samples"]) and toy_model.batches == []


def test_advanced_split_equals_one_full_run(toy_model):
    model = guided(toy_model)
    args = dict(steps=20, cfg=1.0, sampler_name="euler", scheduler="karras", positive=COND, negative=UNCOND)
    full = common_ksampler(model, 9, latent=latent(), **args)["samples"]
    first = common_ksampler(model, 9, latent=latent(), start_step=0, last_step=12,
                            force_full_denoise=False, **args)
    second = common_ksampler(model, 9, latent=first, disable_noise=True, start_step=12, last_step=10000,
                             force_full_denoise=True, **args)
    torch.testing.assert_close(second["samples"], full, atol=1e-5, rtol=1e-5)
    # Ending early without leftover noise jumps to a clean estimate instead.
    clean = common_ksampler(model, 9, latent=latent(), start_step=0, last_step=12, force_full_denoise=True, **args)
    assert float(clean["samples"].std()) < float(first["samples"].std())


def test_img2img_noises_the_latent_to_the_first_sigma(toy_model, sd_sampling):
    seen = []
    source = latent(value=0.3)
    common_ksampler(guided(toy_model), 2, 10, 1.0, "euler", "karras", COND, UNCOND, source, denoise=0.4,
                    callback=seen.append)
    sigma0 = float(ksampler_sigmas(sd_sampling, "karras", "euler", 10, 0.4)[0])
    expected = 0.3 + prepare_noise(source["samples"], 2) * sigma0
    torch.testing.assert_close(seen[0]["x"], expected)


def test_latent_format_scales_in_and_out(toy_model):
    # A latent format with scale 2: the model sees 2·latent; the output comes back divided.
    seen = []
    model = guided(toy_model, process_latent_in=lambda t: t * 2, process_latent_out=lambda t: t / 2)
    source = latent(value=0.3)
    out = common_ksampler(model, 2, 10, 1.0, "euler", "karras", COND, UNCOND, source, denoise=0.4,
                          callback=seen.append)
    assert abs(float((seen[0]["x"] - 0.6).mean())) < 0.1
    # toy's x0 ~ N(0.5, 0.5²) in model space → around 0.25 in latent space.
    assert abs(float(out["samples"].mean()) - 0.25) < 0.1


@pytest.mark.parametrize("sampler_name", ["euler", "ddim", "dpmpp_2m_sde", "uni_pc"])
def test_noise_mask_keeps_the_unmasked_region(toy_model, sampler_name):
    source = latent(value=0.3)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :16] = 1.0
    source["noise_mask"] = mask
    out = common_ksampler(guided(toy_model), 4, 8, 1.0, sampler_name, "karras", COND, UNCOND, source)["samples"]
    if sampler_name == "uni_pc":  # ends at sigma 0.001: the kept region carries that much noise
        torch.testing.assert_close(out[..., 16:], source["samples"][..., 16:], atol=5e-3, rtol=0)
    else:
        assert torch.equal(out[..., 16:], source["samples"][..., 16:])
    assert float((out[..., :16] - 0.3).abs().mean()) > 0.1
    assert out.shape == (1, 4, 32, 32)


def test_ddim_inpaint_noise_is_drawn_from_seed_plus_one(toy_model):
    source = latent(value=0.3)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :16] = 1.0
    seen = {}

    class Spy(ToyModel):
        def __call__(self, x, sigma, c):
            seen.setdefault("x", x.clone())
            seen.setdefault("sigma", float(sigma[0]))
            return super().__call__(x, sigma, c)

    guider = CFGGuider(guided(Spy(toy_model.toy)), COND, UNCOND, 1.0)
    sigmas = calculate_sigmas(model_sampling(), "karras", 4)
    noise = prepare_noise(source["samples"], 4)
    sample_with_sigmas(guider, "ddim", sigmas, noise, source["samples"], mask, seed=4)
    inpaint_noise = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(seen["x"][..., 16:], (0.3 + inpaint_noise * seen["sigma"])[..., 16:])


def test_callback_can_interrupt(toy_model):
    class Stop(Exception):
        pass

    def callback(info):
        if info["i"] == 2:
            raise Stop

    with pytest.raises(Stop):
        common_ksampler(guided(toy_model), 0, 10, 1.0, "euler", "karras", COND, UNCOND, latent(), callback=callback)
    assert len(toy_model.batches) == 3
