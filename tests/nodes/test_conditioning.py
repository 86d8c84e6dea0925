"""Conditioning nodes: ComfyUI schemas, and runs against tiny text encoders, a tiny LoRA and a
MODEL stand-in (tests/ldm/lora_fixtures.py) that follows docs/engine-contract.md."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch

from graph.context import ExecutionContext, InterruptFlag, use_context
from graph.folders import FolderPaths
from graph.registry import NodeRegistry
from ldm.text import build_clip, tiny_text_state_dict
from ldm.text.layouts import sub_dict
from nodes import conditioning as cn
from nodes import register_builtin_nodes
from nodes.services import Services
from tests.nodes.conftest import cpu_engine
from tests.ldm.lora_fixtures import StandInModelHandle, TinyUNetSpec, random_unet


@pytest.fixture
def folders(tmp_path):
    paths = FolderPaths.under(tmp_path)
    paths.ensure()
    return paths


@pytest.fixture
def context(folders):
    ctx = ExecutionContext(prompt_id="p", node_id="1", display_node_id="1",
                           services=Services(folders=folders, engine=cpu_engine()), interrupt=InterruptFlag())
    with use_context(ctx):
        yield ctx


@pytest.fixture(scope="module")
def sd1_clip():
    return build_clip(tiny_text_state_dict("sd1"), "sd1")


@pytest.fixture(scope="module")
def sdxl_clip():
    return build_clip(tiny_text_state_dict("sdxl"), "sdxl")


def run(node_class, **inputs):
    node = node_class()
    return getattr(node, node_class.FUNCTION)(**inputs)


# --------------------------------------------------------------------------- schemas

def test_all_nodes_register_as_core():
    registry = NodeRegistry()
    register_builtin_nodes(registry, modules=("nodes.conditioning",))
    assert set(registry.names()) == set(cn.NODE_CLASS_MAPPINGS) and len(registry.names()) == 21


SCHEMAS = {  # name: (category, function, outputs, required input order)
    "CLIPTextEncode": ("model/conditioning", "encode", ["CONDITIONING"], ["text", "clip"]),
    "CLIPTextEncodeSDXL": ("advanced/conditioning", "encode", ["CONDITIONING"],
                           ["clip", "width", "height", "crop_w", "crop_h", "target_width",
                            "target_height", "text_g", "text_l"]),
    "CLIPTextEncodeSDXLRefiner": ("advanced/conditioning", "encode", ["CONDITIONING"],
                                  ["ascore", "width", "height", "text", "clip"]),
    "CLIPSetLastLayer": ("model/conditioning", "set_last_layer", ["CLIP"], ["clip", "stop_at_clip_layer"]),
    "CLIPLoader": ("model/loaders", "load_clip", ["CLIP"], ["clip_name", "type"]),
    "DualCLIPLoader": ("model/loaders", "load_clip", ["CLIP"], ["clip_name1", "clip_name2", "type"]),
    "LoraLoader": ("model/loaders", "load_lora", ["MODEL", "CLIP"],
                   ["model", "clip", "lora_name", "strength_model", "strength_clip"]),
    "LoraLoaderModelOnly": ("model/loaders", "load_lora_model_only", ["MODEL"],
                            ["model", "lora_name", "strength_model"]),
    "ConditioningCombine": ("model/conditioning/transform", "combine", ["CONDITIONING"], ["conditioning_1", "conditioning_2"]),
    "ConditioningAverage": ("model/conditioning/transform", "addWeighted", ["CONDITIONING"],
                            ["conditioning_to", "conditioning_from", "conditioning_to_strength"]),
    "ConditioningConcat": ("model/conditioning/transform", "concat", ["CONDITIONING"], ["conditioning_to", "conditioning_from"]),
    "ConditioningSetArea": ("model/conditioning/transform", "append", ["CONDITIONING"],
                            ["conditioning", "width", "height", "x", "y", "strength"]),
    "ConditioningSetAreaPercentage": ("model/conditioning/transform", "append", ["CONDITIONING"],
                                      ["conditioning", "width", "height", "x", "y", "strength"]),
    "ConditioningSetAreaStrength": ("model/conditioning/transform", "append", ["CONDITIONING"], ["conditioning", "strength"]),
    "ConditioningSetMask": ("model/conditioning/transform", "append", ["CONDITIONING"],
                            ["conditioning", "mask", "strength", "set_cond_area"]),
    "ConditioningZeroOut": ("model/conditioning/transform", "zero_out", ["CONDITIONING"], ["conditioning"]),
    "ConditioningSetTimestepRange": ("model/conditioning/transform", "set_range", ["CONDITIONING"],
                                     ["conditioning", "start", "end"]),
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_matches_comfyui(name):
    registry = NodeRegistry()
    register_builtin_nodes(registry, modules=("nodes.conditioning",))
    info = registry.node_info(name)
    category, function, outputs, order = SCHEMAS[name]
    assert (info["category"], registry.get(name).function, info["output"]) == (category, function, outputs)
    assert info["input_order"]["required"] == order


def test_widget_ranges():
    lora = cn.LoraLoader.INPUT_TYPES()["required"]
    for name in ("strength_model", "strength_clip"):
        options = lora[name][1]
        assert {k: options[k] for k in ("default", "min", "max", "step")} == \
            {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}
    skip = cn.CLIPSetLastLayer.INPUT_TYPES()["required"]["stop_at_clip_layer"][1]
    assert (skip["default"], skip["min"], skip["max"]) == (-1, -24, -1)
    area = cn.ConditioningSetArea.INPUT_TYPES()["required"]
    assert area["width"][1] == {"default": 64, "min": 64, "max": 16384, "step": 8}
    text = cn.CLIPTextEncode.INPUT_TYPES()["required"]["text"][1]
    assert text["multiline"] and text["dynamicPrompts"]
    assert cn.CLIPLoader.INPUT_TYPES()["required"]["type"][0][0] == "stable_diffusion"
    assert cn.DualCLIPLoader.INPUT_TYPES()["required"]["type"][0][0] == "sdxl"
    assert cn.CLIPLoader.INPUT_TYPES()["optional"]["device"][0] == ["default", "cpu"]


def test_model_lists_come_from_the_folders(context, folders):
    (folders.model_roots("loras")[0] / "style.safetensors").write_bytes(b"")
    assert cn.LoraLoader.INPUT_TYPES()["required"]["lora_name"][0] == ["style.safetensors"]


# --------------------------------------------------------------------------- encoding

def test_clip_text_encode(sd1_clip):
    [[cond, extras]] = run(cn.CLIPTextEncode, clip=sd1_clip, text="a (red:1.2) fox")[0]
    assert cond.shape == (1, 77, 32) and extras["pooled_output"].shape == (1, 32)
    assert torch.equal(cond, sd1_clip.encode("a (red:1.2) fox"))
    with pytest.raises(RuntimeError):
        run(cn.CLIPTextEncode, clip=None, text="x")


def test_clip_text_encode_sdxl(sdxl_clip):
    sizes = dict(width=1024, height=768, crop_w=8, crop_h=16, target_width=2048, target_height=1536)
    [[cond, extras]] = run(cn.CLIPTextEncodeSDXL, clip=sdxl_clip, text_g="a castle",
                           text_l="word " * 100, **sizes)[0]
    assert cond.shape == (1, 154, 64)  # text_l needs 2 chunks; bigG padded with an empty chunk
    assert {k: extras[k] for k in sizes} == sizes and extras["pooled_output"].shape == (1, 32)
    # with the same text both sides, it is plain encoding
    [[same, _]] = run(cn.CLIPTextEncodeSDXL, clip=sdxl_clip, text_g="a castle", text_l="a castle", **sizes)[0]
    assert torch.equal(same, sdxl_clip.encode("a castle"))


def test_clip_text_encode_sdxl_refiner():
    refiner = build_clip(tiny_text_state_dict("sdxl_refiner"), "sdxl_refiner")
    [[cond, extras]] = run(cn.CLIPTextEncodeSDXLRefiner, clip=refiner, ascore=2.5, width=512,
                           height=640, text="a boat")[0]
    assert cond.shape == (1, 77, 32)
    assert (extras["aesthetic_score"], extras["width"], extras["height"]) == (2.5, 512, 640)


def test_clip_set_last_layer(sd1_clip):
    (skipped,) = run(cn.CLIPSetLastLayer, clip=sd1_clip, stop_at_clip_layer=-2)
    assert skipped is not sd1_clip and sd1_clip.layer_idx is None and skipped.layer_idx == -2
    assert not torch.equal(skipped.encode("a fox"), sd1_clip.encode("a fox"))


# --------------------------------------------------------------------------- loaders

def test_clip_loaders(context, folders):
    xl = tiny_text_state_dict("sdxl")
    root = folders.model_roots("text_encoders")[0]
    safetensors.torch.save_file(sub_dict(xl, "conditioner.embedders.0.transformer."), root / "l.safetensors")
    safetensors.torch.save_file(sub_dict(xl, "conditioner.embedders.1.model."), root / "g.safetensors")
    (single,) = run(cn.CLIPLoader, clip_name="l.safetensors", type="stable_diffusion")
    assert single.family.name == "sd1"
    (dual,) = run(cn.DualCLIPLoader, clip_name1="g.safetensors", clip_name2="l.safetensors", type="sdxl")
    assert torch.equal(dual.encode("a cat"), build_clip(xl, "sdxl").encode("a cat"))
    with pytest.raises(ValueError, match="not supported"):
        run(cn.CLIPLoader, clip_name="l.safetensors", type="sd3")


@pytest.fixture
def lora_file(folders):
    g = torch.Generator().manual_seed(0)
    weights = {
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight": torch.randn(32, 4, generator=g),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight": torch.randn(4, 32, generator=g),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha": torch.tensor(4.0),
        "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": torch.randn(128, 4, generator=g),
        "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.randn(4, 32, generator=g),
    }
    safetensors.torch.save_file(weights, folders.model_roots("loras")[0] / "tiny.safetensors")
    return "tiny.safetensors"


def test_lora_loader_on_a_model_handle_it_did_not_create(context, lora_file, sd1_clip):
    model = StandInModelHandle(random_unet(TinyUNetSpec()))
    new_model, new_clip = run(cn.LoraLoader, model=model, clip=sd1_clip, lora_name=lora_file,
                              strength_model=0.8, strength_clip=-0.5)
    assert model.patches == {} and sd1_clip.patches == {}
    assert list(new_model.patches) == ["input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"]
    assert new_model.patches["input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"][0].strength == 0.8
    assert list(new_clip.patches) == ["clip_l.text_model.encoder.layers.0.mlp.fc1.weight"]
    assert not torch.allclose(new_clip.encode("a fox"), sd1_clip.encode("a fox"))
    assert new_model.unet is model.unet  # clones share the weights
    assert run(cn.LoraLoader, model=model, clip=sd1_clip, lora_name=lora_file,
               strength_model=0.0, strength_clip=0.0) == (model, sd1_clip)
    (model_only,) = run(cn.LoraLoaderModelOnly, model=model, lora_name=lora_file, strength_model=1.0)
    assert list(model_only.patches) == list(new_model.patches)


# --------------------------------------------------------------------------- transforms

def cond(value: float, tokens: int = 77, pooled: float | None = None):
    extras = {} if pooled is None else {"pooled_output": torch.full((1, 4), pooled)}
    return [[torch.full((1, tokens, 4), value), extras]]


def test_combine_and_concat():
    a, b = cond(1.0), cond(2.0, tokens=154)
    (combined,) = run(cn.ConditioningCombine, conditioning_1=a, conditioning_2=b)
    assert len(combined) == 2 and combined[0][0] is a[0][0]
    (joined,) = run(cn.ConditioningConcat, conditioning_to=a, conditioning_from=b)
    assert joined[0][0].shape == (1, 231, 4) and joined[0][1] is not a[0][1]


def test_average_pads_cuts_and_mixes_pooled():
    (mixed,) = run(cn.ConditioningAverage, conditioning_to=cond(1.0, 154, pooled=1.0),
                   conditioning_from=cond(3.0, 77, pooled=3.0), conditioning_to_strength=0.25)
    tensor, extras = mixed[0]
    assert torch.allclose(tensor[:, :77], torch.full((1, 77, 4), 2.5))  # 1·0.25 + 3·0.75
    assert torch.allclose(tensor[:, 77:], torch.full((1, 77, 4), 0.25))  # padded with zeros
    assert torch.allclose(extras["pooled_output"], torch.full((1, 4), 2.5))
    (cut,) = run(cn.ConditioningAverage, conditioning_to=cond(1.0, 77), conditioning_from=cond(3.0, 154, pooled=3.0),
                 conditioning_to_strength=0.5)
    assert cut[0][0].shape == (1, 77, 4) and torch.equal(cut[0][1]["pooled_output"], torch.full((1, 4), 3.0))


def test_areas_masks_strength_and_ranges():
    base = cond(1.0)
    (area,) = run(cn.ConditioningSetArea, conditioning=base, width=512, height=256, x=64, y=8, strength=0.7)
    assert area[0][1] == {"area": (32, 64, 1, 8), "strength": 0.7, "set_area_to_bounds": False}
    assert base[0][1] == {}
    (pct,) = run(cn.ConditioningSetAreaPercentage, conditioning=base, width=0.5, height=0.25, x=0.1, y=0.2,
                 strength=1.0)
    assert pct[0][1]["area"] == ("percentage", 0.25, 0.5, 0.2, 0.1)
    (strong,) = run(cn.ConditioningSetAreaStrength, conditioning=area, strength=2.0)
    assert strong[0][1]["strength"] == 2.0 and strong[0][1]["area"] == (32, 64, 1, 8)
    (masked,) = run(cn.ConditioningSetMask, conditioning=base, mask=torch.ones(8, 8), strength=0.5,
                    set_cond_area="mask bounds")
    assert masked[0][1]["mask"].shape == (1, 8, 8)
    assert (masked[0][1]["mask_strength"], masked[0][1]["set_area_to_bounds"]) == (0.5, True)
    (timed,) = run(cn.ConditioningSetTimestepRange, conditioning=base, start=0.2, end=0.8)
    assert (timed[0][1]["start_percent"], timed[0][1]["end_percent"]) == (0.2, 0.8)


def test_zero_out():
    (zeroed,) = run(cn.ConditioningZeroOut, conditioning=cond(1.0, pooled=2.0))
    assert not zeroed[0][0].any() and not zeroed[0][1]["pooled_output"].any()
