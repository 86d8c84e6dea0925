"""ldm.loading.detect: families from keys and shapes only; real-size layouts checked on the meta device."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch

from ldm.control.detect import ControlDetectionError, head_split
from ldm.loading.checkpoint import load_state_dict
from ldm.loading.detect import (FAMILIES, UNET_PREFIX, Contents, DetectionError, check_heads, detect_unet,
                                find_contents, metadata_heads)
from ldm.loading.weights import strip_prefix
from ldm.networks.unet import UNetConfig, UNetModel, unet_config_from_state_dict
from ldm.tiny import tiny_checkpoint, write_tiny_checkpoint, write_tiny_unet, write_tiny_vae

EXPECTED_PREDICTION = {"sd2_v": "v"}


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    return {family: write_tiny_checkpoint(folder / f"{family}.safetensors", family, include_text=False)
            for family in FAMILIES}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_tiny_family_is_detected_from_its_file(tiny_files, family, tmp_path):
    # A misleading name proves the file name plays no part.
    path = tmp_path / "sdxl_v_pred_inpainting_x4.safetensors"
    shutil.copy(tiny_files[family], path)
    state_dict, metadata = load_state_dict(path)
    contents = find_contents(state_dict)
    assert (contents.unet_prefix, contents.vae_prefix) == (UNET_PREFIX, "first_stage_model.")
    detection = detect_unet(strip_prefix(state_dict, UNET_PREFIX), metadata, markers=state_dict)
    assert detection.family == family
    assert detection.prediction == EXPECTED_PREDICTION.get(family, "eps")


def test_unet_only_and_vae_only_files(tmp_path):
    unet = load_state_dict(write_tiny_unet(tmp_path / "u.safetensors", "sdxl"))[0]
    vae = load_state_dict(write_tiny_vae(tmp_path / "v.safetensors"))[0]
    assert find_contents(unet) == Contents(unet_prefix="", vae_prefix=None, has_text=False)
    assert (find_contents(vae).unet_prefix, find_contents(vae).vae_prefix) == (None, "")
    assert detect_unet(unet, load_state_dict(tmp_path / "u.safetensors")[1]).family == "sdxl"


def test_text_encoder_keys_are_noticed():
    state_dict, _ = tiny_checkpoint("sd1", include_text=False)
    assert not find_contents(state_dict).has_text
    state_dict["cond_stage_model.transformer.text_model.final_layer_norm.weight"] = torch.ones(4)
    assert find_contents(state_dict).has_text


def test_explicit_prediction_markers_win_over_the_statistic():
    state_dict, metadata = tiny_checkpoint("sd2_v", include_text=False)
    unet = strip_prefix(state_dict, UNET_PREFIX)
    assert detect_unet(unet, metadata).family == "sd2_v"
    as_eps = dict(metadata, **{"modelspec.prediction_type": "epsilon"})
    assert detect_unet(unet, as_eps).family == "sd2"
    eps_state, eps_meta = tiny_checkpoint("sd2", include_text=False)
    eps_unet = strip_prefix(eps_state, UNET_PREFIX)
    assert detect_unet(eps_unet, eps_meta, markers={"v_pred": torch.tensor([])}).family == "sd2_v"
    sdxl_state, sdxl_meta = tiny_checkpoint("sdxl", include_text=False)
    v_xl = detect_unet(strip_prefix(sdxl_state, UNET_PREFIX), sdxl_meta, markers={"v_pred": torch.tensor([])})
    assert (v_xl.family, v_xl.prediction) == ("sdxl", "v")


def test_inpainting_is_never_v_by_statistic():
    state_dict, metadata = tiny_checkpoint("sd2_inpaint", include_text=False)
    unet = strip_prefix(state_dict, UNET_PREFIX)
    key = "output_blocks.5.1.transformer_blocks.0.norm1.bias"
    unet[key] = torch.randn(unet[key].shape) * 0.5
    assert detect_unet(unet, metadata).prediction == "eps"


def test_heads_that_do_not_fit_the_convention_ask_for_metadata():
    state_dict, _ = tiny_checkpoint("sd2", include_text=False)
    with pytest.raises(DetectionError, match="weft.num_head_channels"):
        detect_unet(strip_prefix(state_dict, UNET_PREFIX), {})


def test_head_metadata_and_head_check_raise_the_callers_error():
    """ControlNet detection reads head metadata and checks heads as the UNet's does, raising its own error."""
    assert metadata_heads({}) is None
    assert metadata_heads({"weft.num_heads": "5"}) == (5, -1)
    with pytest.raises(ControlDetectionError, match="are not integers"):
        head_split({"weft.num_head_channels": "x"}, sd1_like=True)
    state_dict, _ = tiny_checkpoint("sd2", include_text=False)
    config = dataclasses.replace(unet_config_from_state_dict(strip_prefix(state_dict, UNET_PREFIX)),
                                 num_heads=-1, num_head_channels=64)
    with pytest.raises(ControlDetectionError, match="^ControlNet: .*weft.num_heads or weft.num_head_channels"):
        check_heads(config, "ControlNet", ControlDetectionError)


def test_unsupported_variants_are_refused_clearly():
    state_dict, metadata = tiny_checkpoint("sd1", include_text=False)
    unet = strip_prefix(state_dict, UNET_PREFIX)
    unet["input_blocks.0.0.weight"] = torch.zeros(32, 8, 3, 3)  # instruct-pix2pix shape
    with pytest.raises(DetectionError, match="8 input channels"):
        detect_unet(unet, metadata)
    with pytest.raises(DetectionError, match="not a UNet"):
        detect_unet({"time_embed.0.weight": torch.zeros(4, 4)}, {})
    with pytest.raises(DetectionError, match="diffusers-layout"):
        find_contents({"conv_in.weight": torch.zeros(1),
                       "down_blocks.0.resnets.0.conv1.weight": torch.zeros(1)})


# Real layouts (published configs), built on the meta device: shapes without memory.
REAL = {
    "sd1": UNetConfig(4, 4, 320, (1, 2, 4, 4), (2, 2, 2, 2), (1,) * 6 + (0, 0), 1, (0, 0, 0) + (1,) * 9,
                      768, False, num_heads=8),
    "sd1_inpaint": UNetConfig(9, 4, 320, (1, 2, 4, 4), (2, 2, 2, 2), (1,) * 6 + (0, 0), 1,
                              (0, 0, 0) + (1,) * 9, 768, False, num_heads=8),
    "sd2": UNetConfig(4, 4, 320, (1, 2, 4, 4), (2, 2, 2, 2), (1,) * 6 + (0, 0), 1, (0, 0, 0) + (1,) * 9,
                      1024, True, num_head_channels=64),
    "sd2_inpaint": UNetConfig(9, 4, 320, (1, 2, 4, 4), (2, 2, 2, 2), (1,) * 6 + (0, 0), 1,
                              (0, 0, 0) + (1,) * 9, 1024, True, num_head_channels=64),
    "sdxl": UNetConfig(4, 4, 320, (1, 2, 4), (2, 2, 2), (0, 0, 2, 2, 10, 10), 10,
                       (10, 10, 10, 2, 2, 2, 0, 0, 0), 2048, True, num_head_channels=64,
                       adm_in_channels=2816),
    "sdxl_refiner": UNetConfig(4, 4, 384, (1, 2, 4, 4), (2, 2, 2, 2), (0, 0, 4, 4, 4, 4, 0, 0), 4,
                               (0, 0, 0, 4, 4, 4, 4, 4, 4, 0, 0, 0), 1280, True, num_head_channels=64,
                               adm_in_channels=2560),
    "sd_x4": UNetConfig(7, 4, 256, (1, 2, 2, 4), (2, 2, 2, 2), (0, 0) + (1,) * 6, 1, (1,) * 9 + (0, 0, 0),
                        1024, True, num_heads=8, num_classes=1000,
                        disable_self_attn=(False, True, True, False)),
}


@pytest.mark.parametrize("family", sorted(REAL))
def test_real_sized_layouts_are_detected_with_the_family_conventions(family):
    unet = UNetModel(REAL[family]).state_dict()  # meta tensors: real key names and shapes
    if family == "sd2":  # the v statistic needs values; an eps model's bias is small
        unet["output_blocks.11.1.transformer_blocks.0.norm1.bias"] = torch.full((1280,), 0.01)
    detection = detect_unet(unet, {})
    assert detection.family == family
    assert detection.config == REAL[family]


def test_real_sd2_768_v_statistic_on_the_published_key():
    unet = UNetModel(REAL["sd2"]).state_dict()
    unet["output_blocks.11.1.transformer_blocks.0.norm1.bias"] = torch.randn(1280) * 0.2
    assert detect_unet(unet, {}).family == "sd2_v"


def test_real_layout_facts():
    sd1 = UNetModel(REAL["sd1"]).state_dict()
    assert len(sd1) == 686 and sum(t.numel() for t in sd1.values()) == 859_520_964  # SD 1.x UNet
    # upsample: index 1 after the attention-less deepest level, index 2 after an attention layer
    upsamplers = {"output_blocks.2.1.conv.weight", "output_blocks.5.2.conv.weight",
                  "output_blocks.8.2.conv.weight"}
    assert upsamplers <= set(sd1)
    xl = UNetModel(REAL["sdxl"]).state_dict()
    assert len(xl) == 1680 and tuple(xl["label_emb.0.0.weight"].shape) == (1280, 2816)
    assert "input_blocks.8.1.transformer_blocks.9.ff.net.2.weight" in xl
