"""ldm.model: ModelHandle, checkpoint assembly, UNet-/VAE-only loading (saving: test_saving.py)."""

from __future__ import annotations


import pytest
import torch

from ldm.latent_formats import SD15, SD_X4, SDXL
from ldm.loading.checkpoint import CheckpointError, save_state_dict
from ldm.loading.detect import DetectionError
from ldm.loading.weights import strip_prefix
from ldm.model import ModelHandle, load_checkpoint, load_unet, load_vae
from ldm.tiny import tiny_checkpoint, write_tiny_checkpoint, write_tiny_unet, write_tiny_vae


@pytest.fixture(scope="module")
def sd1_file(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.safetensors", "sd1",
                                 include_text=False)


def test_load_checkpoint_assembles_model_and_vae(sd1_file, fp32):
    model, clip, vae = load_checkpoint(sd1_file, compute=fp32)
    assert isinstance(model, ModelHandle)
    assert (model.family, model.prediction, model.latent_format) == ("sd1", "eps", SD15)
    assert clip is None  # no text encoder in the file, as ComfyUI reports it
    assert vae.downscale_ratio == 8 and vae.latent_channels == 4
    assert all(p.dtype == torch.float16 for p in model.unet.parameters())  # file dtype kept
    assert (model.device, model.dtype) == (torch.device("cpu"), torch.float32)


def test_latent_formats_follow_the_family(tmp_path, fp32):
    for family, fmt in (("sdxl_refiner", SDXL), ("sd_x4", SD_X4), ("sd2_v", SD15)):
        path = write_tiny_checkpoint(tmp_path / f"{family}.safetensors", family, include_text=False)
        assert load_checkpoint(path, compute=fp32)[0].latent_format is fmt


def test_clone_shares_weights_and_copies_patch_lists(sd1_file, fp32):
    model = load_checkpoint(sd1_file, compute=fp32)[0]
    model.patches["input_blocks.0.0.weight"] = [("lora", 1.0)]
    model.hooks.post_cfg_functions = [print]
    model.hooks.transformer_options = {"patches": {"attn2_patch": [print]}}
    twin = model.clone()
    assert twin.unet is model.unet
    twin.patches["input_blocks.0.0.weight"].append(("lora", 0.5))
    twin.patches["out.2.weight"] = [("lora", 1.0)]
    twin.hooks.post_cfg_functions.append(len)
    twin.hooks.transformer_options["patches"]["attn2_patch"].append(len)
    assert model.patches == {"input_blocks.0.0.weight": [("lora", 1.0)]}
    assert model.hooks.post_cfg_functions == [print]
    assert model.hooks.transformer_options == {"patches": {"attn2_patch": [print]}}


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl", "sdxl_refiner"])
def test_full_checkpoint_brings_its_text_encoders(tmp_path, fp32, family):
    from ldm.text import ClipHandle
    path = write_tiny_checkpoint(tmp_path / f"{family}.safetensors", family)
    model, clip, _ = load_checkpoint(path, compute=fp32)
    assert isinstance(clip, ClipHandle)
    cond, pooled = clip.encode_from_tokens(clip.tokenize("a red circle"), return_pooled=True)
    assert cond.shape == (1, 77, model.config.context_dim)
    assert pooled is not None and pooled.shape[0] == 1  # ComfyUI keeps a pooled output for every family


def test_checkpoint_without_text_encoder_gives_no_clip(tmp_path, fp32):
    path = write_tiny_checkpoint(tmp_path / "no-text.safetensors", "sd1", include_text=False)
    assert load_checkpoint(path, compute=fp32)[1] is None


def test_unet_only_with_fp8_storage(tmp_path, fp32):
    path = write_tiny_unet(tmp_path / "unet.safetensors", "sd1")
    model = load_unet(path, weight_dtype="fp8_e4m3fn", compute=fp32)
    assert model.family == "sd1"
    assert model.unet.input_blocks[0][0].weight.dtype == torch.float8_e4m3fn
    x = torch.randn(1, 4, 8, 8)
    out = model.unet(x, torch.tensor([10.0]), torch.randn(1, 3, model.config.context_dim))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="weight_dtype"):
        load_unet(path, weight_dtype="fp4")


def test_vae_only_and_wrong_part_errors(tmp_path, fp32):
    vae_path = write_tiny_vae(tmp_path / "vae.safetensors")
    assert load_vae(vae_path, compute=fp32).downscale_ratio == 8
    with pytest.raises(DetectionError, match="no diffusion model"):
        load_checkpoint(vae_path, compute=fp32)
    unet_path = write_tiny_unet(tmp_path / "unet.safetensors", "sd1")
    with pytest.raises(DetectionError, match="UNETLoader"):
        load_checkpoint(unet_path, compute=fp32)
    with pytest.raises(DetectionError, match="KL-autoencoder"):
        load_vae(unet_path, compute=fp32)
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="bogus.safetensors"):
        load_checkpoint(bogus, compute=fp32)


def test_vae_files_with_training_leftovers_load(tmp_path, fp32):
    state_dict, _ = tiny_checkpoint("sd1", include_text=False)
    vae_only = strip_prefix(state_dict, "first_stage_model.")
    vae_only["loss.discriminator.main.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vae_with_loss.safetensors"
    save_state_dict(path, vae_only)
    assert load_vae(path, compute=fp32).latent_channels == 4


def test_training_checkpoints_with_ema_weights_load_the_regular_weights(tmp_path, fp32):
    state_dict, metadata = tiny_checkpoint("sd1", include_text=False)
    # CompVis training checkpoints keep EMA copies with the dots removed from the names
    state_dict["model_ema.decay"] = torch.tensor(0.9999)
    state_dict["model_ema.input_blocks00weight"] = torch.zeros(3)
    path = tmp_path / "with_ema.ckpt"
    torch.save({"state_dict": state_dict, "global_step": 470000}, path)
    model, _clip, _vae = load_checkpoint(path, compute=fp32)
    assert model.family == "sd1"
    assert torch.equal(model.unet.out[2].weight, state_dict["model.diffusion_model.out.2.weight"])
