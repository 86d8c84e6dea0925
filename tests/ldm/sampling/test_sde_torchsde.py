"""The SDE samplers draw ComfyUI's Brownian noise (torchsde's BrownianTree) and give its samples.

Reference numbers (``COMFYUI``) were recorded once, outside the repository, by running ComfyUI's
own ``comfy/k_diffusion/sampling.py`` functions (``sample_dpmpp_sde``, ``sample_dpmpp_2m_sde``,
``sample_dpmpp_2m_sde_heun``, ``sample_dpmpp_3m_sde``, ``sample_dpmpp_2m_sde_gpu``; snapshot of
February 2026, torchsde 0.2.6, torch 2.13 CPU) on the Gaussian toy denoiser of ``conftest``
(mu = s = 0.5), with ``extra_args={"seed": 42}`` as ComfyUI's CFGGuider passes it, so each
sampler built its own ``BrownianTreeNoiseSampler``. Start: ``randn([2, 4, 8, 8])`` from seed
42 times ``sqrt(1 + sigma_0²)`` (ComfyUI's noise scaling from pure noise, empty latent). The
sigmas are the ones listed below (Weft's karras and normal schedules of the SD1 eps model;
ComfyUI's ``get_sigmas_karras`` gives the same karras values bit for bit). Recorded: the sum,
the sum of absolute values and every 64th value of the flattened result.
"""

import pytest
import torch
import torchsde

from ldm.sampling import sample as sample_module
from ldm.sampling.guidance import CFGGuider, GuidedModel
from ldm.sampling.model_sampling import model_sampling
from ldm.sampling.noise import BrownianNoiseSampler, brownian_noise_sampler, prepare_noise
from ldm.sampling.sample import sample_with_sigmas
from ldm.sampling.samplers import get_sampler

SEED = 42
SIGMAS = {
    "karras10": [14.614643096923828, 9.10292911529541, 5.478392124176025, 3.168604850769043,
                 1.749418020248413, 0.9140726923942566, 0.4469183683395386, 0.2013983577489853,
                 0.08191029727458954, 0.0291671771556139, 0.0],
    # ComfyUI's "normal": its last step, 0.369 -> 0.029, is 4.8x longer in log sigma than the
    # one before, which the 3M SDE extrapolation amplifies (ComfyUI's result, too: std 2.3
    # against the data's 0.5).
    "normal10": [14.614640235900879, 7.839882850646973, 4.6091742515563965, 2.918307065963745,
                 1.9501614570617676, 1.3449277877807617, 0.9323579668998718, 0.6249769330024719,
                 0.3686577379703522, 0.029167160391807556, 0.0],
}
COMFYUI = {
    ("dpmpp_sde", "karras10"): (246.930847, 283.927032, [
        0.074862, 0.594888, 0.25503, 0.439613, 0.524648, 0.461849, 0.614606, 0.836443]),
    ("dpmpp_2m_sde", "karras10"): (246.079254, 304.120697, [
        0.090021, 0.759574, 0.222054, 0.653889, 0.47412, 0.380167, 0.753107, 0.966341]),
    ("dpmpp_2m_sde_heun", "karras10"): (243.712891, 327.980774, [
        0.030997, 0.8274, 0.175161, 0.676409, 0.450424, 0.307255, 0.762772, 1.072271]),
    ("dpmpp_3m_sde", "karras10"): (236.212936, 343.913025, [
        0.02567, 0.835891, -0.047296, 0.724132, 0.483019, 0.114025, 0.634105, 1.413246]),
    ("dpmpp_3m_sde", "normal10"): (217.259872, 964.252686, [
        2.132791, 3.694452, 1.651197, 3.322763, 0.289105, 1.418365, 1.197453, 3.965784]),
    ("dpmpp_2m_sde_gpu", "karras10"): (246.079254, 304.120697, [
        0.090021, 0.759574, 0.222054, 0.653889, 0.47412, 0.380167, 0.753107, 0.966341]),
}


def toy_apply_model(x, sigma, c):
    """The conftest Gaussian toy's exact denoiser, as a model's apply_model (conditioning ignored)."""
    sigma = sigma.reshape(-1, *([1] * (x.ndim - 1)))
    return (0.25 * x + sigma ** 2 * 0.5) / (0.25 + sigma ** 2)


def run_ksampler(name, sigmas, seed=SEED):
    guided = GuidedModel(apply_model=toy_apply_model, sampling=model_sampling("eps"))
    guider = CFGGuider(guided, [[torch.ones(1, 77, 8), {}]], [[torch.zeros(1, 77, 8), {}]], 1.0)
    latent = torch.zeros(2, 4, 8, 8)
    return sample_with_sigmas(guider, name, sigmas, prepare_noise(latent, seed), latent, seed=seed)


@pytest.mark.parametrize("name, schedule", list(COMFYUI))
def test_sde_samplers_reproduce_comfyui(name, schedule):
    total, total_abs, every_64th = COMFYUI[name, schedule]
    out = run_ksampler(name, torch.tensor(SIGMAS[schedule]))
    # Against ComfyUI's full results these cases differ by at most 1.6e-6 (float32 rounding:
    # ComfyUI multiplies by alpha_t = sigma·exp(lambda) ≈ 1 where Weft does not).
    torch.testing.assert_close(out.flatten()[::64], torch.tensor(every_64th), atol=2e-5, rtol=0)
    assert float(out.sum()) == pytest.approx(total, abs=2e-3)
    assert float(out.abs().sum()) == pytest.approx(total_abs, abs=2e-3)


def _comfyui_increment(tree, sigma, sigma_next):
    """The unit noise of ComfyUI's sampler for one query, from the bare torchsde tree."""
    lo, hi = sorted((sigma, sigma_next))
    w = tree(lo, hi) * (1 if sigma < sigma_next else -1)
    return w / (sigma_next - sigma).abs().sqrt()


@pytest.mark.filterwarnings("ignore:Should have t")  # torchsde's clamp at the tree's rounded end
@pytest.mark.parametrize("name", ["dpmpp_sde", "dpmpp_2m_sde", "dpmpp_3m_sde_gpu"])
def test_drawn_noise_equals_a_torchsde_tree_built_the_comfyui_way(monkeypatch, name):
    calls = []

    def recording(x, sigmas, seed, on_device=False):
        inner = brownian_noise_sampler(x, sigmas, seed, on_device)

        def draw(sigma, sigma_next):
            noise = inner(sigma, sigma_next)
            calls.append((sigma, sigma_next, noise))
            return noise
        return draw

    monkeypatch.setattr(sample_module, "brownian_noise_sampler", recording)
    sigmas = torch.tensor(SIGMAS["karras10"])
    run_ksampler(name, sigmas, seed=7)
    expected_calls = 18 if name == "dpmpp_sde" else 9  # dpmpp_sde also draws at each midpoint
    assert len(calls) == expected_calls

    # ComfyUI: t0 = smallest positive sigma, t1 = largest, w0 = zeros like x, entropy = seed,
    # torchsde's defaults, on the CPU, queried in the sampler's order.
    tree = torchsde.BrownianTree(sigmas[sigmas > 0].min(), torch.zeros(2, 4, 8, 8), sigmas.max(), entropy=7)
    for sigma, sigma_next, noise in calls:
        assert torch.equal(noise, _comfyui_increment(tree, sigma, sigma_next))


def test_one_tree_spans_the_whole_batch():
    # ComfyUI hands the integer seed to one tree shaped like the batch (not one tree per item):
    # each node of it is one randn of the batch's shape, so item 0 gets the noise the image
    # would get alone and item 1 the draws that follow, not a repeat of item 0.
    sigmas = torch.tensor(SIGMAS["karras10"])
    pair = brownian_noise_sampler(torch.zeros(2, 4, 8, 8), sigmas, 3)(sigmas[0], sigmas[1])
    alone = brownian_noise_sampler(torch.zeros(1, 4, 8, 8), sigmas, 3)(sigmas[0], sigmas[1])
    assert pair.shape == (2, 4, 8, 8)
    assert torch.equal(pair[:1], alone)
    assert not torch.equal(pair[1:], alone)


def test_gpu_names_build_the_tree_on_the_sampling_device(monkeypatch):
    built = []
    original = BrownianNoiseSampler.__init__

    def spy(self, *args, **kwargs):
        built.append(kwargs.get("on_device"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(BrownianNoiseSampler, "__init__", spy)
    sigmas = torch.tensor(SIGMAS["karras10"])[-4:]
    run_ksampler("dpmpp_2m_sde", sigmas)
    run_ksampler("dpmpp_2m_sde_gpu", sigmas)
    assert built == [False, True]
    assert get_sampler("dpmpp_2m_sde_gpu").function is get_sampler("dpmpp_2m_sde").function
