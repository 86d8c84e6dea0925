"""ControlNet nodes: ComfyUI's signatures, what the apply nodes put into conditioning, loaders."""

from __future__ import annotations

import torch

from graph.registry import NodeRegistry
from ldm.control.apply import AppliedControl, ControlModel
from ldm.control.tiny import tiny_controlnet_state_dict, write_tiny_controlnet
from ldm.loading.checkpoint import save_state_dict
from ldm.loading.detect import UNET_PREFIX, detect_unet
from ldm.loading.weights import strip_prefix
from ldm.model import build_unet
from ldm.tiny import tiny_checkpoint
from nodes import register_builtin_nodes
from nodes.controlnet import (ControlNetApply, ControlNetApplyAdvanced, ControlNetInpaintingAliMamaApply,
                              ControlNetLoader, DiffControlNetLoader, SetUnionControlNetType)

STRENGTH = ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01})


def _percent(default):
    return ("FLOAT", {"default": default, "min": 0.0, "max": 1.0, "step": 0.001})


def _conditioning(*values):
    return [[torch.full((1, 2, 4), float(v)), {"pooled_output": None}] for v in values]


def _model(**kwargs):
    return ControlModel(kind="controlnet", network=torch.nn.Identity(), **kwargs)


def test_signatures_are_comfyuis():
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    info = registry.object_info()

    def entry(name):
        found = info[name]
        return ({k: tuple(v) for k, v in found["input"]["required"].items()},
                {k: tuple(v) for k, v in found["input"].get("optional", {}).items()},
                found["category"], list(found["output"]), found["display_name"])

    assert entry("ControlNetApplyAdvanced") == (
        {"positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "control_net": ("CONTROL_NET",),
         "image": ("IMAGE",), "strength": STRENGTH, "start_percent": _percent(0.0), "end_percent": _percent(1.0)},
        {"vae": ("VAE",)}, "model/conditioning/controlnet", ["CONDITIONING", "CONDITIONING"], "Apply ControlNet")
    assert list(info["ControlNetApplyAdvanced"]["output_name"]) == ["positive", "negative"]
    assert entry("ControlNetApply") == (
        {"conditioning": ("CONDITIONING",), "control_net": ("CONTROL_NET",), "image": ("IMAGE",),
         "strength": STRENGTH}, {}, "model/conditioning/controlnet", ["CONDITIONING"],
        "Apply ControlNet (DEPRECATED)")
    assert info["ControlNetApply"]["deprecated"] is True
    assert entry("ControlNetLoader")[2:] == ("model/loaders", ["CONTROL_NET"], "Load ControlNet Model")
    assert entry("DiffControlNetLoader")[0]["model"] == ("MODEL",)
    assert entry("DiffControlNetLoader")[2:] == ("model/loaders", ["CONTROL_NET"], "Load ControlNet Model (diff)")
    union = entry("SetUnionControlNetType")
    assert union[0]["type"] == (["auto", "openpose", "depth", "hed/pidi/scribble/ted",
                                 "canny/lineart/anime_lineart/mlsd", "normal", "segment", "tile", "repaint"],)
    # nodes_controlnet.py has no source newer than the Oct 2025 copy: its category is that copy's
    assert union[2:4] == ("conditioning/controlnet", ["CONTROL_NET"])
    alimama = entry("ControlNetInpaintingAliMamaApply")
    assert list(alimama[0]) == ["positive", "negative", "control_net", "vae", "image", "mask", "strength",
                                "start_percent", "end_percent"]
    assert alimama[2:4] == ("conditioning/controlnet", ["CONDITIONING", "CONDITIONING"])


def test_apply_advanced_shares_one_control_per_previous_and_chains():
    model = _model()
    image = torch.rand(1, 16, 16, 3)
    positive, negative = _conditioning(1, 2), _conditioning(3)
    pos, neg = ControlNetApplyAdvanced().apply_controlnet(positive, negative, model, image, 0.5, 0.2, 0.9)
    controls = {id(entry[1]["control"]) for entry in pos + neg}
    assert len(controls) == 1  # one object for all entries without a previous control
    applied = pos[0][1]["control"]
    assert isinstance(applied, AppliedControl)
    assert applied.strength == 0.5 and applied.percent_range == (0.2, 0.9) and applied.previous is None
    assert torch.equal(applied.hint, image.movedim(-1, 1))
    assert pos[0][1]["control_apply_to_uncond"] is False
    assert "control" not in positive[0][1]  # the inputs are not changed
    assert torch.equal(pos[1][0], positive[1][0])

    pos2, neg2 = ControlNetApplyAdvanced().apply_controlnet(pos, neg, _model(), image, 1.0, 0.0, 1.0)
    assert pos2[0][1]["control"].previous is applied and neg2[0][1]["control"] is pos2[0][1]["control"]
    assert ControlNetApplyAdvanced().apply_controlnet(pos, neg, model, image, 0.0, 0.0, 1.0) == (pos, neg)


def test_old_apply_marks_entries_for_the_uncond_side_and_skips_strength_zero():
    conditioning = _conditioning(1, 2)
    [out] = ControlNetApply().apply_controlnet(conditioning, _model(), torch.rand(1, 8, 8, 3), 0.8)
    assert all(entry[1]["control_apply_to_uncond"] for entry in out)
    assert out[0][1]["control"] is not out[1][1]["control"]
    assert ControlNetApply().apply_controlnet(conditioning, _model(), torch.rand(1, 8, 8, 3), 0.0) == (conditioning,)


def test_set_union_type_copies_the_control_net():
    model = _model()
    [depth] = SetUnionControlNetType().set_controlnet_type(model, "depth")
    [auto] = SetUnionControlNetType().set_controlnet_type(depth, "auto")
    assert depth.extra_args == {"control_type": [1]} and auto.extra_args == {"control_type": []}
    assert model.extra_args == {} and depth.network is model.network


def test_alimama_inpaint_blacks_out_the_mask_and_adds_it_for_mask_models():
    image = torch.ones(1, 8, 8, 3)
    mask = torch.zeros(1, 8, 8)
    mask[0, :4] = 1.0
    positive, negative = _conditioning(1), _conditioning(2)
    pos, _ = ControlNetInpaintingAliMamaApply().apply_inpaint_controlnet(
        positive, negative, _model(concat_mask=True), None, image, mask, 1.0, 0.0, 1.0)
    applied = pos[0][1]["control"]
    assert applied.hint[0, :, :4].max() == 0.0 and applied.hint[0, :, 4:].min() == 1.0
    [keep] = applied.extra_concat
    assert torch.equal(keep[0, 0], 1.0 - mask[0])
    pos, _ = ControlNetInpaintingAliMamaApply().apply_inpaint_controlnet(
        positive, negative, _model(), None, image, mask, 1.0, 0.0, 1.0)
    assert torch.equal(pos[0][1]["control"].hint, image.movedim(-1, 1)) and pos[0][1]["control"].extra_concat == ()


def test_loaders_read_the_controlnet_folder(node_services):
    folder = node_services.folders.models["controlnet"][0]
    write_tiny_controlnet(folder / "cn.safetensors", "sd1", seed=1)
    [control] = ControlNetLoader().load_controlnet("cn.safetensors")
    assert control.kind == "controlnet" and len(control.network.zero_convs) == 6

    state_dict, metadata = tiny_checkpoint("sd1", seed=2, include_text=False, dtype=torch.float32)
    unet_sd = strip_prefix(state_dict, UNET_PREFIX)
    model = build_unet(unet_sd, detect_unet(unet_sd, metadata))
    weights = tiny_controlnet_state_dict("sd1", seed=3)
    diff = {"control_model." + k: v for k, v in weights.items()} | {"difference": torch.zeros(1)}
    save_state_dict(folder / "diff.safetensors", diff)
    [combined] = DiffControlNetLoader().load_controlnet(model, "diff.safetensors")
    key = "time_embed.0.weight"
    assert torch.allclose(combined.network.state_dict()[key], weights[key] + unet_sd[key])
