"""The CLIP vision tower against transformers' CLIPVisionModelWithProjection (same weights), its
layouts, and the preprocessing against transformers' CLIPImageProcessor."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

from ldm.vision.clip_vision import (CLIP_MEAN, CLIP_STD, ClipVisionLayoutError, build_vision_model,
                                    clip_preprocess, clip_vision_from_state_dict, find_vision_tower,
                                    openclip_visual_to_hf, vision_config_from_weights)
from ldm.vision.tiny import TINY_VISION, tiny_vision_state_dict


def _reference(hidden_act: str, seed: int = 0) -> CLIPVisionModelWithProjection:
    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                              image_size=28, patch_size=14, projection_dim=24, hidden_act=hidden_act)
    model = CLIPVisionModelWithProjection(config).eval()
    with torch.no_grad():  # non-trivial norms and biases, so a misplaced one shows
        for name, param in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                param.add_(0.1 * torch.randn_like(param))
    return model


def _close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    scale = theirs.abs().max().item()
    assert (ours - theirs).abs().max().item() <= 1e-4 * max(scale, 1.0)


@pytest.mark.parametrize("hidden_act", ["gelu", "quick_gelu"])
def test_tower_matches_transformers(hidden_act):
    reference = _reference(hidden_act)
    weights = {k: v for k, v in reference.state_dict().items()}
    config = vision_config_from_weights(weights)
    assert (config.width, config.layers, config.heads, config.patch_size, config.image_size,
            config.projection_dim) == (32, 3, 2, 14, 28, 24)
    ours = build_vision_model(weights, dataclasses.replace(config, activation=hidden_act))
    pixels = torch.randn(2, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_hidden_states=True)
        got = ours(pixels)
    _close(got.image_embeds, expected.image_embeds)
    _close(got.last_hidden_state, expected.last_hidden_state)
    _close(got.penultimate_hidden_states, expected.hidden_states[-2])
    assert got.mm_projected is None


def test_wrong_activation_is_visible():
    """The parity test can fail: the same weights with the other activation disagree."""
    reference = _reference("quick_gelu")
    weights = dict(reference.state_dict())
    ours = build_vision_model(weights, dataclasses.replace(vision_config_from_weights(weights), activation="gelu"))
    pixels = torch.randn(1, 3, 28, 28, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        diff = (ours(pixels).image_embeds - reference(pixel_values=pixels).image_embeds).abs().max()
    assert diff > 1e-3


def test_openclip_layout_loads_as_the_same_tower():
    hf = tiny_vision_state_dict(seed=3, layout="hf")
    openclip = tiny_vision_state_dict(seed=3, layout="openclip", prefix="visual.")
    assert "visual.transformer.resblocks.0.attn.in_proj_weight" in openclip and "visual.proj" in openclip
    a, b = clip_vision_from_state_dict(hf), clip_vision_from_state_dict(openclip)
    image = torch.rand(1, 240, 300, 3, generator=torch.Generator().manual_seed(4))
    out_a, out_b = a.encode_image(image), b.encode_image(image)
    assert torch.equal(out_a.image_embeds, out_b.image_embeds)
    assert out_a.image_embeds.shape == (1, TINY_VISION.projection_dim)
    assert out_a.last_hidden_state.shape == (1, TINY_VISION.positions, TINY_VISION.width)
    # an unCLIP checkpoint's tower, under embedder.model.visual.
    nested = tiny_vision_state_dict(seed=3, layout="openclip", prefix="embedder.model.visual.")
    assert torch.equal(clip_vision_from_state_dict(nested).encode_image(image).image_embeds, out_a.image_embeds)


def test_real_tower_shapes_are_recognised():
    """ViT-L (quick-GELU), ViT-H and bigG (GELU), 16 heads, from shapes alone (meta tensors)."""
    def shapes(width, layers, mlp, proj, positions=257):
        with torch.device("meta"):
            sd = {"vision_model.embeddings.class_embedding": torch.empty(width),
                  "vision_model.embeddings.patch_embedding.weight": torch.empty(width, 3, 14, 14),
                  "vision_model.embeddings.position_embedding.weight": torch.empty(positions, width),
                  "vision_model.encoder.layers.0.mlp.fc1.weight": torch.empty(mlp, width),
                  f"vision_model.encoder.layers.{layers - 1}.layer_norm1.weight": torch.empty(width),
                  "visual_projection.weight": torch.empty(proj, width)}
        return vision_config_from_weights(sd)

    vit_l, vit_h, big_g = shapes(1024, 24, 4096, 768), shapes(1280, 32, 5120, 1024), shapes(1664, 48, 8192, 1280)
    assert (vit_l.activation, vit_l.heads, vit_l.layers, vit_l.image_size) == ("quick_gelu", 16, 24, 224)
    assert (vit_h.activation, vit_h.heads, vit_h.projection_dim) == ("gelu", 16, 1024)
    assert (big_g.activation, big_g.layers, big_g.projection_dim) == ("gelu", 48, 1280)
    assert shapes(1024, 24, 4096, 768, positions=577).image_size == 336


def test_unknown_layouts():
    assert find_vision_tower({"foo.weight": torch.zeros(1)}) is None
    with pytest.raises(ClipVisionLayoutError, match="unknown OpenCLIP vision keys"):
        openclip_visual_to_hf({"conv1.weight": torch.zeros(1), "mystery": torch.zeros(1)})


def test_preprocess_matches_clip_image_processor_without_resize():
    """At 224×224 only 8-bit rounding and normalisation remain: equal to the reference."""
    rng = np.random.default_rng(0)
    pixels_u8 = rng.integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    processor = CLIPImageProcessor(image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    expected = processor(images=list(pixels_u8), return_tensors="pt")["pixel_values"]
    got = clip_preprocess(torch.from_numpy(pixels_u8).float() / 255.0)
    assert torch.allclose(got, expected, atol=1e-5)


def test_preprocess_resize_and_centre_crop_follow_the_reference():
    """Shorter side to 224 (bicubic) then the centre: the reference (PIL bicubic) differs only by
    interpolation kernel details; a shifted crop or no crop would differ far more."""
    y, x = np.mgrid[0:300, 0:450]
    smooth = np.stack([(np.sin(x / 37.0) + 1) / 2, (np.cos(y / 23.0) + 1) / 2, (x + y) / 750.0], -1)
    pixels_u8 = np.round(255 * smooth).astype(np.uint8)
    processor = CLIPImageProcessor(image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    expected = processor(images=[pixels_u8], return_tensors="pt")["pixel_values"]
    got = clip_preprocess(torch.from_numpy(pixels_u8)[None].float() / 255.0, crop=True)
    assert got.shape == (1, 3, 224, 224)
    assert (got - expected).abs().mean() < 0.02
    squashed = clip_preprocess(torch.from_numpy(pixels_u8)[None].float() / 255.0, crop=False)
    assert (squashed - expected).abs().mean() > 0.1
    # crop "none" squashes the whole picture: its left column is the image's left column
    left = torch.from_numpy(smooth[:, 0, 0]).float()
    expected_left = (left.mean() - CLIP_MEAN[0]) / CLIP_STD[0]
    assert abs(squashed[0, 0, :, 0].mean().item() - expected_left.item()) < 0.05


def test_alpha_channel_is_dropped():
    image = torch.rand(1, 224, 224, 4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(clip_preprocess(image), clip_preprocess(image[..., :3]))
