"""ldm.networks.autoencoder: parity with diffusers' AutoencoderKL (encode and decode) on tiny VAEs."""

from __future__ import annotations

import pytest
import torch

from ldm.loading.detect import VAE_PREFIX
from ldm.loading.weights import adopt_weights, strip_prefix
from ldm.networks.autoencoder import AutoencoderKL, normalize_vae_weights, sample_posterior, vae_config_from_state_dict
from ldm.tiny import tiny_checkpoint, tiny_vae_config


def _models(family, oracle):
    state_dict, _ = tiny_checkpoint(family, seed=5, include_text=False)
    vae_sd = strip_prefix(state_dict, VAE_PREFIX)
    config = vae_config_from_state_dict(vae_sd)
    assert config == tiny_vae_config(family)
    ours = AutoencoderKL(config)
    adopt_weights(ours, vae_sd)
    return ours, oracle.vae(state_dict, config)


@pytest.mark.parametrize("family", ["sd1", "sd_x4"])
def test_encode_and_decode_match_diffusers(family, oracle):
    ours, theirs = _models(family, oracle)
    ratio = ours.config.downscale_ratio
    g = torch.Generator().manual_seed(0)
    pixels = torch.rand(2, 3, 32, 48, generator=g) * 2 - 1
    latents = torch.randn(2, 4, 32 // ratio, 48 // ratio, generator=g)
    with torch.no_grad():
        mean, logvar = ours.encode(pixels)
        posterior = theirs.encode(pixels).latent_dist
        decoded = ours.decode(latents)
        reference = theirs.decode(latents).sample
    assert mean.shape == (2, 4, 32 // ratio, 48 // ratio)
    for mine, ref in ((mean, posterior.mean), (logvar, posterior.logvar), (decoded, reference)):
        scale = ref.abs().max().item()
        assert (mine - ref).abs().max().item() <= 1e-4 * scale


def test_sampling_uses_the_posterior_spread():
    mean, logvar = torch.zeros(1, 4, 8, 8), torch.full((1, 4, 8, 8), 2 * torch.log(torch.tensor(3.0)).item())
    draw = sample_posterior(mean, logvar, torch.Generator().manual_seed(1))
    expected = 3.0 * torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(draw, expected)


def test_linear_attention_weights_are_accepted():
    state_dict, _ = tiny_checkpoint("sd1", include_text=False)
    vae_sd = strip_prefix(state_dict, VAE_PREFIX)
    key = "decoder.mid.attn_1.q.weight"
    flattened = dict(vae_sd, **{key: vae_sd[key][:, :, 0, 0]})  # as some converted files store it
    fixed = normalize_vae_weights(flattened)
    assert fixed[key].shape == vae_sd[key].shape
    model = AutoencoderKL(vae_config_from_state_dict(fixed))
    adopt_weights(model, fixed)


def test_diffusers_layout_vae_files_are_renamed_back_exactly(tmp_path, fp32):
    """diffusers' own LDM->diffusers conversion, undone by ours, gives back the original weights."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    from ldm.loading.checkpoint import save_state_dict
    from ldm.model import load_vae
    from ldm.loading.vae_keys import diffusers_vae_to_ldm, is_diffusers_vae

    state_dict, _ = tiny_checkpoint("sd1", seed=9, include_text=False)
    original = strip_prefix(state_dict, VAE_PREFIX)
    levels = len(tiny_vae_config("sd1").ch_mult)
    block_types = {"down_block_types": ["DownEncoderBlock2D"] * levels,
                   "up_block_types": ["UpDecoderBlock2D"] * levels}
    diffusers_sd = convert_ldm_vae_checkpoint(state_dict, block_types)
    assert is_diffusers_vae(diffusers_sd) and not is_diffusers_vae(original)
    renamed = normalize_vae_weights(diffusers_vae_to_ldm(diffusers_sd))
    assert set(renamed) == set(original)
    assert all(torch.equal(renamed[k], original[k]) for k in original)
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    save_state_dict(path, diffusers_sd)
    vae = load_vae(path, compute=fp32)
    pixels = torch.rand(1, 16, 16, 3)
    reference = AutoencoderKL(tiny_vae_config("sd1"))
    adopt_weights(reference, original)
    with torch.no_grad():
        torch.testing.assert_close(vae.encode(pixels), reference.encode(pixels.movedim(-1, 1) * 2 - 1)[0])
