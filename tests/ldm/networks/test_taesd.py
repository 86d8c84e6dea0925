"""ldm.networks.taesd: the TAESD decoder in the published key layout, against diffusers' AutoencoderTiny."""

from __future__ import annotations

import pytest
import torch

from ldm.loading.checkpoint import CheckpointError
from ldm.networks.taesd import decode_preview, load_taesd_decoder, taesd_decoder


def random_decoder_weights(seed: int = 0, latent_channels: int = 4) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(value.shape, generator=generator) * 0.05
            for key, value in taesd_decoder(latent_channels).state_dict().items()}


def test_key_layout_is_the_published_one():
    keys = set(taesd_decoder().state_dict())
    # 0 clamp, 1 conv C→64, 2 ReLU, Blocks at 3-5, 8-10, 13-15, 18; bias-free convs after upsampling.
    expected = {"1.weight", "1.bias", "19.weight", "19.bias", "7.weight", "12.weight", "17.weight"}
    for block in (3, 4, 5, 8, 9, 10, 13, 14, 15, 18):
        expected |= {f"{block}.conv.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")}
    assert keys == expected
    shapes = taesd_decoder().state_dict()
    assert shapes["1.weight"].shape == (64, 4, 3, 3) and shapes["19.weight"].shape == (3, 64, 3, 3)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_loads_weights_saved_in_the_real_layout(tmp_path, suffix):
    weights = random_decoder_weights()
    path = tmp_path / f"taesd_decoder{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file
        save_file({k: v.half() for k, v in weights.items()}, str(path))
    else:
        torch.save(weights, path)
    decoder = load_taesd_decoder(path)
    assert next(decoder.parameters()).dtype == torch.float32
    torch.testing.assert_close(decoder.state_dict()["3.conv.2.weight"], weights["3.conv.2.weight"],
                               atol=1e-3, rtol=1e-3)
    images = decode_preview(decoder, torch.randn(2, 4, 5, 7))
    assert images.shape == (2, 40, 56, 3) and float(images.min()) >= 0 and float(images.max()) <= 1


def test_missing_or_unexpected_keys_are_errors(tmp_path):
    from safetensors.torch import save_file

    weights = random_decoder_weights()
    del weights["19.bias"]
    save_file(weights, str(tmp_path / "broken.safetensors"))
    with pytest.raises(RuntimeError, match="19.bias"):
        load_taesd_decoder(tmp_path / "broken.safetensors")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError):
        load_taesd_decoder(tmp_path / "empty.safetensors")


def test_matches_diffusers_autoencoder_tiny_decoder():
    from diffusers import AutoencoderTiny

    weights = random_decoder_weights(seed=3)
    ours = taesd_decoder()
    ours.load_state_dict(weights)
    oracle = AutoencoderTiny()  # TAESD's published configuration
    # diffusers keeps the clamp outside its layer list: our index N is its layers.(N-1).
    renamed = {f"layers.{int(k.split('.', 1)[0]) - 1}.{k.split('.', 1)[1]}": v for k, v in weights.items()}
    oracle.decoder.load_state_dict(renamed)
    latents = torch.randn(1, 4, 6, 6, generator=torch.Generator().manual_seed(1)) * 4
    with torch.no_grad():
        expected = (oracle.decoder(latents) + 1) / 2  # diffusers returns -1…1
    ours_rgb = decode_preview(ours, latents)
    torch.testing.assert_close(ours_rgb, expected.clamp(0, 1).permute(0, 2, 3, 1), atol=1e-5, rtol=1e-5)
