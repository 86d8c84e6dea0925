"""unCLIP checkpoints: detection from the label width, loading all four parts from one file, and
the model input the sampler builds from ``unclip_conditioning``."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ldm.devices import detect_compute
from ldm.loading.detect import DetectionError, detect_unet
from ldm.networks.unet import UNetModel
from ldm.sampling.model_conds import CondContext, model_conds_for_family
from ldm.tiny import TextWidths, tiny_unet_config
from ldm.vision.clip_vision import ClipVisionOutput
from ldm.vision.loading import load_clip_vision, load_unclip_checkpoint
from ldm.vision.tiny import write_tiny_unclip_checkpoint
from ldm.vision.unclip import unclip_label

FP32 = detect_compute("cpu", force_dtype=torch.float32)


def _meta_unet(config):
    with torch.device("meta"):
        return {k: v for k, v in UNetModel(config).state_dict().items()}


V_MARK = {"modelspec.prediction_type": "v"}  # meta tensors have no statistics to read


@pytest.mark.parametrize("width,family", [(1536, "sd2_unclip_l"), (2048, "sd2_unclip_h")])
def test_sd2_layout_with_an_unclip_label_is_unclip(width, family):
    config = dataclasses.replace(tiny_unet_config("sd2", TextWidths(64)), adm_in_channels=width)
    detection = detect_unet(_meta_unet(config), {"weft.num_head_channels": "8", **V_MARK})
    assert (detection.family, detection.prediction) == (family, "v")


def test_sdxl_with_a_2048_label_stays_sdxl():
    """SDXL has no attention at full resolution; the same label width does not make it unCLIP."""
    config = tiny_unet_config("sdxl", TextWidths(80, pooled=2048 - 6 * 256))
    assert detect_unet(_meta_unet(config), {"weft.num_head_channels": "8", **V_MARK}).family == "sdxl"


def test_other_label_widths_on_sd2_are_refused():
    config = dataclasses.replace(tiny_unet_config("sd2", TextWidths(64)), adm_in_channels=1000)
    with pytest.raises(DetectionError, match="label embedding"):
        detect_unet(_meta_unet(config), {"weft.num_head_channels": "8", **V_MARK})


@pytest.fixture(scope="module")
def unclip_file(tmp_path_factory):
    return write_tiny_unclip_checkpoint(tmp_path_factory.mktemp("unclip") / "tiny_unclip.safetensors")


def test_checkpoint_gives_model_clip_vae_and_vision(unclip_file):
    model, clip, vae, vision = load_unclip_checkpoint(unclip_file, compute=FP32)
    assert model.family == "sd2_unclip_l" and model.config.adm_in_channels == 1536
    assert clip is not None and vae is not None
    image = torch.rand(1, 64, 96, 3, generator=torch.Generator().manual_seed(0))
    embeds = vision.encode_image(image).image_embeds
    assert embeds.shape == (1, 768)
    # CLIPVisionLoader finds the same tower in the checkpoint
    assert torch.equal(load_clip_vision(unclip_file).encode_image(image).image_embeds, embeds)


def test_a_file_without_a_tower_is_refused(tmp_path):
    from ldm.loading.checkpoint import save_state_dict
    save_state_dict(tmp_path / "x.safetensors", {"foo.weight": torch.zeros(2)})
    with pytest.raises(ValueError, match="no CLIP vision model"):
        load_clip_vision(tmp_path / "x.safetensors")


def test_model_input_is_the_unclip_label_with_the_jobs_seed_minus_ten():
    build = model_conds_for_family("sd2_unclip_l")
    embeds = torch.randn(1, 768, generator=torch.Generator().manual_seed(1))
    vision = ClipVisionOutput(image_embeds=embeds, last_hidden_state=torch.zeros(1), penultimate_hidden_states=torch.zeros(1))
    item = {"clip_vision_output": vision, "strength": 1.5, "noise_augmentation": 0.3}
    entry = {"cross_attn": torch.zeros(1, 77, 32), "unclip_conditioning": [item]}
    inputs = build(entry, CondContext(noise_shape=torch.Size([2, 4, 8, 8]), seed=42))
    assert torch.equal(inputs["y"].value, unclip_label([item], 768, 32))
    assert inputs["y"].process(2, None).value.shape == (2, 1536)
    empty = build({"cross_attn": torch.zeros(1, 77, 32)}, CondContext(noise_shape=torch.Size([1, 4, 8, 8])))
    assert torch.equal(empty["y"].value, torch.zeros(1, 1536))
