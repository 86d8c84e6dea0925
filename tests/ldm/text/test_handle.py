"""The CLIP handle: families, tiny checkpoints in real layouts, clones, standalone files."""

from __future__ import annotations

import pytest
import torch

from ldm.text import build_clip, build_clip_from_files, detect_text_encoder, tiny_text_state_dict
from ldm.text.families import text_family
from ldm.text.handle import guess_kinds
from ldm.text.layouts import TextLayoutError, sub_dict

FAMILIES = ["sd1", "sd1_inpaint", "sd2", "sd2_v", "sd2_inpaint", "sd_x4", "sdxl", "sdxl_refiner"]


def test_tiny_layouts_are_the_checkpoint_layouts():
    sd1 = tiny_text_state_dict("sd1")
    assert "cond_stage_model.transformer.text_model.encoder.layers.1.self_attn.q_proj.weight" in sd1
    assert "cond_stage_model.transformer.text_model.final_layer_norm.bias" in sd1
    assert sd1["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"].shape == (49408, 32)
    assert not any("text_projection" in k for k in sd1)

    sd2 = tiny_text_state_dict("sd2")
    assert sd2["cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight"].shape == (96, 32)
    assert sd2["cond_stage_model.model.positional_embedding"].shape == (77, 32)
    for key in ("ln_final.weight", "text_projection", "token_embedding.weight",
                "transformer.resblocks.0.mlp.c_fc.weight", "transformer.resblocks.0.ln_1.bias"):
        assert f"cond_stage_model.model.{key}" in sd2
    assert set(tiny_text_state_dict("sd_x4")) == set(sd2)

    xl = tiny_text_state_dict("sdxl")
    assert {k.split(".")[2] for k in xl} == {"0", "1"}
    assert "conditioner.embedders.0.transformer.text_model.encoder.layers.0.mlp.fc1.weight" in xl
    assert "conditioner.embedders.1.model.text_projection" in xl
    refiner = tiny_text_state_dict("sdxl_refiner")
    assert all(k.startswith("conditioner.embedders.0.model.") for k in refiner)


def test_tiny_weights_depend_on_seed():
    a, b = tiny_text_state_dict("sd1", seed=0), tiny_text_state_dict("sd1", seed=1)
    key = "cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight"
    assert torch.equal(a[key], tiny_text_state_dict("sd1", seed=0)[key])
    assert not torch.equal(a[key], b[key])


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_encodes(family):
    clip = build_clip(tiny_text_state_dict(family), family)
    tokens = clip.tokenize("a (tiny:1.2) test, " * 20)
    assert set(tokens) == {s.name for s in text_family(family).slots}
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    width = 64 if family == "sdxl" else 32
    assert cond.shape == (1, 154, width) and cond.dtype == torch.float32
    assert pooled.shape == (1, 32)
    assert torch.isfinite(cond).all()


def test_clone_shares_weights_copies_settings():
    clip = build_clip(tiny_text_state_dict("sd1"), "sd1")
    twin = clip.clone()
    assert twin.encoders is clip.encoders and twin.tokenizer is clip.tokenizer
    twin.set_last_layer(-2)
    twin.patches["clip_l.text_model.final_layer_norm.weight"] = []
    assert clip.layer_idx is None and clip.patches == {}
    assert twin.clone().layer_idx == -2
    assert clip.compute_device is None
    twin.compute_device = torch.device("cpu")  # SelectCLIPDevice's choice survives later clones
    assert twin.clone().compute_device == torch.device("cpu") and clip.compute_device is None
    with pytest.raises(ValueError):
        twin.set_last_layer(0)


def test_output_forms():
    clip = build_clip(tiny_text_state_dict("sdxl"), "sdxl")
    tokens = clip.tokenize("a cat")
    cond = clip.encode_from_tokens(tokens)
    as_dict = clip.encode_from_tokens(tokens, return_dict=True)
    assert torch.equal(cond, as_dict["cond"]) and as_dict["pooled_output"].shape == (1, 32)
    [[scheduled, extras]] = clip.encode_from_tokens_scheduled(tokens, add_dict={"width": 1024})
    assert torch.equal(scheduled, cond) and extras["width"] == 1024
    assert torch.equal(extras["pooled_output"], as_dict["pooled_output"])
    assert torch.equal(clip.encode("a cat"), cond)


def test_sdxl_cuts_to_the_shorter_encoder():
    clip = build_clip(tiny_text_state_dict("sdxl"), "sdxl")
    tokens = clip.tokenize("short")
    tokens["l"] = clip.tokenize("long " * 100)["l"]
    assert clip.encode_from_tokens(tokens).shape == (1, 77, 64)


def test_missing_encoder_and_stray_keys_are_errors():
    xl = tiny_text_state_dict("sdxl")
    only_l = {k: v for k, v in xl.items() if k.startswith("conditioner.embedders.0.")}
    with pytest.raises(TextLayoutError):
        build_clip(only_l, "sdxl")
    sd1 = dict(tiny_text_state_dict("sd1"))
    sd1["cond_stage_model.transformer.text_model.encoder.layers.0.surprise.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="surprise"):
        build_clip(sd1, "sd1")
    with pytest.raises(ValueError):
        build_clip(sd1, "flux")


def test_storage_dtype_choice():
    clip = build_clip(tiny_text_state_dict("sd1"), "sd1", dtype=torch.bfloat16)
    assert clip.encoders["clip_l"].text_model.final_layer_norm.weight.dtype == torch.bfloat16
    assert clip.encode("a cat").dtype == torch.float32


def test_standalone_files():
    xl = tiny_text_state_dict("sdxl")
    clip_l = sub_dict(xl, "conditioner.embedders.0.transformer.")  # plain HF file: text_model.…
    clip_g = sub_dict(xl, "conditioner.embedders.1.")  # OpenCLIP file under "model."
    sd1 = build_clip_from_files([clip_l], "stable_diffusion", kinds=["clip_l"])
    assert sd1.family.name == "sd1"
    refiner = build_clip_from_files([clip_g], "stable_diffusion", kinds=["clip_g"])
    assert refiner.family.name == "sdxl_refiner"
    dual = build_clip_from_files([clip_g, clip_l], "sdxl", kinds=["clip_g", "clip_l"])
    full = build_clip(xl, "sdxl")
    assert torch.equal(dual.encode("a cat"), full.encode("a cat"))
    with pytest.raises(ValueError):
        build_clip_from_files([clip_l, clip_l], "sdxl", kinds=["clip_l", "clip_l"])
    with pytest.raises(ValueError):
        build_clip_from_files([clip_l], "sd3", kinds=["clip_l"])
    # width 32 names no encoder: the layout decides (HF -> CLIP-L, OpenCLIP -> H / bigG)
    assert guess_kinds([clip_l], "stable_diffusion") == ["clip_l"]
    assert guess_kinds([clip_g], "stable_diffusion") == ["clip_h"]
    assert guess_kinds([clip_g, clip_l], "sdxl") == ["clip_g", "clip_l"]
    assert torch.equal(build_clip_from_files([clip_g, clip_l], "sdxl").encode("a cat"), full.encode("a cat"))


def real_size_text_tower(width: int, openclip: bool) -> dict:
    """Meta tensors with a real tower's shapes (one layer): detection without the memory."""
    meta = lambda *shape: torch.empty(*shape, device="meta")  # noqa: E731
    if openclip:
        return {"token_embedding.weight": meta(49408, width), "positional_embedding": meta(77, width),
                "transformer.resblocks.0.attn.in_proj_weight": meta(3 * width, width),
                "transformer.resblocks.0.mlp.c_fc.weight": meta(4 * width, width),
                "text_projection": meta(width, width)}
    return {"text_model.embeddings.token_embedding.weight": meta(49408, width),
            "text_model.embeddings.position_embedding.weight": meta(77, width),
            "text_model.encoder.layers.0.mlp.fc1.weight": meta(4 * width, width)}


@pytest.mark.parametrize("width, openclip, kind", [
    (768, False, "clip_l"), (1024, True, "clip_h"), (1280, True, "clip_g"), (1280, False, "clip_g")])
def test_standalone_kind_detection(width, openclip, kind):
    tower = real_size_text_tower(width, openclip)
    assert detect_text_encoder(tower) == kind
    prefix = "cond_stage_model.model." if openclip else "cond_stage_model.transformer."
    assert detect_text_encoder({prefix + k: v for k, v in tower.items()}) == kind
    assert detect_text_encoder({"something.else": torch.zeros(1)}) is None
