"""ldm.tiny: a full set of small checkpoints in real layouts, loadable by the real path."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from ldm.control.loading import load_control_model
from ldm.loading.detect import FAMILIES
from ldm.model import load_checkpoint, load_unet, load_vae
from ldm.tiny import tiny_checkpoint


def test_cli_writes_a_loadable_set(tmp_path, fp32):
    result = subprocess.run([sys.executable, "-m", "ldm.tiny", str(tmp_path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    checkpoints = sorted((tmp_path / "checkpoints").glob("*.safetensors"))
    assert len(checkpoints) == len(FAMILIES)
    for path in checkpoints:
        assert path.stat().st_size < 16_000_000  # a few MB each; most of it is CLIP's 49408-token embedding
        model, _clip, _vae = load_checkpoint(path, compute=fp32)
        assert path.name == f"tiny_{model.family}.safetensors"
    for path in (tmp_path / "diffusion_models").glob("*.safetensors"):
        load_unet(path, compute=fp32)
    assert {load_vae(p, compute=fp32).downscale_ratio for p in (tmp_path / "vae").glob("*")} == {4, 8}
    # The ControlNet is tiny_sd1's encoder: every layer it shares with that UNet has its shape.
    [controlnet] = (tmp_path / "controlnet").glob("*.safetensors")
    control = load_control_model(controlnet)
    unet = load_checkpoint(tmp_path / "checkpoints" / "tiny_sd1.safetensors", compute=fp32)[0].unet.state_dict()
    encoder = {k: v.shape for k, v in control.network.state_dict().items() if k.startswith(("input_blocks.", "middle_block."))}
    assert control.kind == "controlnet" and len(encoder) > 50
    assert encoder == {k: unet[k].shape for k in encoder}


def test_same_seed_same_weights_and_dtype_choice():
    a, _ = tiny_checkpoint("sd1", seed=7, include_text=False)
    b, _ = tiny_checkpoint("sd1", seed=7, include_text=False, dtype=torch.float16)
    c, _ = tiny_checkpoint("sd1", seed=8, include_text=False)
    key = "model.diffusion_model.input_blocks.1.1.proj_in.weight"
    assert torch.equal(a[key].half(), b[key]) and b[key].dtype == torch.float16
    assert not torch.equal(a[key], c[key])


def test_real_key_names():
    state_dict, metadata = tiny_checkpoint("sdxl", include_text=False)
    for key in ("model.diffusion_model.label_emb.0.0.weight", "model.diffusion_model.out.2.weight",
                "model.diffusion_model.output_blocks.2.2.conv.weight",
                "model.diffusion_model.middle_block.1.transformer_blocks.1.attn2.to_k.weight",
                "first_stage_model.decoder.up.3.upsample.conv.weight", "first_stage_model.quant_conv.weight"):
        assert key in state_dict
    assert metadata == {"weft.num_head_channels": "8"}


def test_unknown_family():
    with pytest.raises(ValueError, match="unknown family"):
        tiny_checkpoint("sd3")


def test_text_weights_from_ldm_text_when_asked(monkeypatch):
    import ldm.tiny as tiny

    fake_text = {"cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.ones(40)}
    monkeypatch.setattr(tiny, "tiny_text_state_dict", lambda family, seed=0: fake_text)
    state_dict, _ = tiny.tiny_checkpoint("sd1", include_text=True)
    assert "cond_stage_model.transformer.text_model.final_layer_norm.weight" in state_dict
    # the UNet's context width follows the text encoder's width
    to_k = state_dict["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"]
    assert to_k.shape[1] == 40
