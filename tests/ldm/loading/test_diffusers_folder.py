"""ldm.loading.diffusers_folder: diffusers model folders (written by diffusers and transformers themselves)
load as MODEL / CLIP / VAE that compute what diffusers' and transformers' own models compute."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from ldm.loading.checkpoint import load_state_dict, save_state_dict
from ldm.loading.diffusers_folder import DiffusersFolderError, find_model_folders, load_diffusers
from ldm.networks.adm import sdxl_label

UNET_SD1 = dict(sample_size=8, block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=32,
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), attention_head_dim=4,
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), norm_num_groups=32)
# SDXL's layout: linear projections, 64-wide heads given per level, the "text_time" add-embedding
# (pooled 32 + six 256-wide size embeddings).
UNET_SDXL = dict(sample_size=8, block_out_channels=(64, 128), layers_per_block=1, cross_attention_dim=64,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), attention_head_dim=(1, 2),
                 up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), norm_num_groups=32,
                 use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
                 projection_class_embeddings_input_dim=32 + 6 * 256, transformer_layers_per_block=(1, 2))


def text_config(**extra):
    from transformers import CLIPTextConfig
    return CLIPTextConfig(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2,
                          vocab_size=49408, max_position_embeddings=77, **extra)


def write_folder(root: Path, unet_config: dict, text_models: dict, prediction: str = "epsilon"):
    """A diffusers pipeline folder saved by diffusers / transformers; returns the models."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unet = UNet2DConditionModel(**unet_config).eval()
        vae = AutoencoderKL(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=32,
                            layers_per_block=1).eval()
        unet.save_pretrained(root / "unet")
        vae.save_pretrained(root / "vae")
        for name, model in text_models.items():
            model.eval().save_pretrained(root / name)
    (root / "scheduler").mkdir(parents=True, exist_ok=True)
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps({"prediction_type": prediction}))
    (root / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return unet, vae, text_models


def sd1_folder(root: Path, prediction: str = "epsilon"):
    from transformers import CLIPTextModel
    torch.manual_seed(1)
    return write_folder(root, UNET_SD1, {"text_encoder": CLIPTextModel(text_config(hidden_act="quick_gelu"))},
                        prediction)


@pytest.fixture(scope="module")
def sd1(tmp_path_factory):
    root = tmp_path_factory.mktemp("diffusers") / "tiny-sd1"
    return root, sd1_folder(root)


def fp32():
    from ldm.devices import detect_compute
    return detect_compute("cpu", force_dtype=torch.float32)


def test_sd1_folder_computes_what_diffusers_and_transformers_compute(sd1):
    root, (unet, vae, texts) = sd1
    model, clip, weft_vae = load_diffusers(root, compute=fp32())
    assert (model.family, model.prediction, model.config.num_heads) == ("sd1", "eps", 4)
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    context = torch.randn(2, 77, 32, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([10.0, 700.0])
    with torch.no_grad():
        torch.testing.assert_close(model.unet(x, t, context=context),
                                   unet(x, t, encoder_hidden_states=context).sample, atol=1e-5, rtol=1e-4)
        decoded = ((vae.decode(x[:1]).sample + 1) / 2).clamp(0, 1).movedim(1, -1)
    torch.testing.assert_close(weft_vae.decode(x[:1]), decoded, atol=1e-5, rtol=1e-4)
    tokens = clip.tokenize("a small red cube")
    ids = torch.tensor([[token for token, _ in tokens["l"][0]]])
    with torch.no_grad():
        expected = texts["text_encoder"](input_ids=ids).last_hidden_state  # SD1: last layer, final norm
    torch.testing.assert_close(clip.encode_from_tokens(tokens), expected, atol=1e-5, rtol=1e-4)


def test_sdxl_folder_with_two_text_encoders_and_v_prediction(tmp_path):
    from transformers import CLIPTextModel, CLIPTextModelWithProjection
    torch.manual_seed(4)
    texts = {"text_encoder": CLIPTextModel(text_config(hidden_act="quick_gelu")),
             "text_encoder_2": CLIPTextModelWithProjection(text_config(hidden_act="gelu", projection_dim=32))}
    unet, _, _ = write_folder(tmp_path / "xl", UNET_SDXL, texts, prediction="v_prediction")
    model, clip, _ = load_diffusers(tmp_path / "xl", compute=fp32())
    assert (model.family, model.prediction, model.config.num_head_channels) == ("sdxl", "v", 64)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    context = torch.randn(1, 77, 64, generator=torch.Generator().manual_seed(6))
    pooled = torch.randn(1, 32, generator=torch.Generator().manual_seed(7))
    sizes = torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]])
    with torch.no_grad():
        expected = unet(x, torch.tensor([500.0]), encoder_hidden_states=context,
                        added_cond_kwargs={"text_embeds": pooled, "time_ids": sizes}).sample
        y = sdxl_label(pooled, width=64, height=64)  # diffusers' time_ids order: h, w, top, left, h, w
        found = model.unet(x, torch.tensor([500.0]), context=context, y=y)
    torch.testing.assert_close(found, expected, atol=1e-5, rtol=1e-4)
    assert list(clip.encoders.keys()) == ["clip_l", "clip_g"]
    tokens = clip.tokenize("a cube")
    with torch.no_grad():
        ids = torch.tensor([[token for token, _ in tokens["g"][0]]])
        pooled_expected = texts["text_encoder_2"](input_ids=ids).text_embeds
    _, pooled_found = clip.encode_from_tokens(tokens, return_pooled=True)
    torch.testing.assert_close(pooled_found, pooled_expected, atol=1e-5, rtol=1e-4)


def test_text_encoders_saved_with_the_text_model_prefix_load_too(tmp_path, sd1):
    root, (_, _, texts) = sd1
    copy = tmp_path / "old-style"
    for part in ("unet", "vae", "scheduler"):
        (copy / part).mkdir(parents=True)
        for file in (root / part).iterdir():
            (copy / part / file.name).write_bytes(file.read_bytes())
    (copy / "model_index.json").write_text("{}")
    weights, _ = load_state_dict(root / "text_encoder" / "model.safetensors")
    (copy / "text_encoder").mkdir()
    # transformers 4 (most published folders) writes "text_model.…" names
    save_state_dict(copy / "text_encoder" / "model.safetensors", {f"text_model.{k}": v for k, v in weights.items()})
    _, clip, _ = load_diffusers(copy, compute=fp32())
    _, reference, _ = load_diffusers(root, compute=fp32())
    tokens = clip.tokenize("a cube")
    torch.testing.assert_close(clip.encode_from_tokens(tokens), reference.encode_from_tokens(tokens))


def test_folders_are_found_by_their_model_index_and_others_refused(tmp_path, sd1):
    root, _ = sd1
    (tmp_path / "models" / "nested" / "x").mkdir(parents=True)
    (tmp_path / "models" / "nested" / "x" / "model_index.json").write_text("{}")
    (tmp_path / "models" / "other").mkdir()
    assert find_model_folders(tmp_path / "models") == ["nested/x"]
    assert find_model_folders(tmp_path / "missing") == []
    with pytest.raises(DiffusersFolderError, match="model_index.json"):
        load_diffusers(tmp_path / "models" / "other")
    with pytest.raises(DiffusersFolderError, match="no weights file"):
        load_diffusers(tmp_path / "models" / "nested" / "x")
