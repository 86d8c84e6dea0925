"""CLIP vision, unCLIP, style model and hypernetwork nodes: ComfyUI's schemas, behaviour, and an
unCLIP prompt run end to end through the executor on a tiny unCLIP checkpoint."""

from __future__ import annotations

import json

import numpy
import pytest
import torch
from PIL import Image

from graph.executor import Executor
from graph.folders import FolderPaths
from graph.registry import NodeRegistry
from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.vision.tiny import (write_tiny_clip_vision, write_tiny_hypernetwork, write_tiny_style_model,
                             write_tiny_unclip_checkpoint)
from nodes import clip_vision as nodes_cv
from nodes import register_builtin_nodes
from nodes.services import NodeOptions, Services

MODULES = ("nodes.loaders", "nodes.conditioning", "nodes.sampling", "nodes.vae", "nodes.latent",
           "nodes.image", "nodes.clip_vision")


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def unclip_checkpoint(tmp_path_factory):
    return write_tiny_unclip_checkpoint(tmp_path_factory.mktemp("unclip_nodes") / "tiny_unclip.safetensors")


# --- schemas (ComfyUI nodes.py / comfy_extras/nodes_hypernetwork.py) --------------------------


def _schema(name):
    registry = NodeRegistry()
    register_builtin_nodes(registry, ("nodes.clip_vision",))
    return json.loads(json.dumps(registry.object_info()[name]))  # as a client receives it


def test_schemas_are_comfyuis():
    encode = _schema("CLIPVisionEncode")
    assert encode["input"]["required"] == {"clip_vision": ["CLIP_VISION"], "image": ["IMAGE"],
                                           "crop": [["center", "none"]]}
    assert (encode["output"], encode["category"], encode["display_name"]) == (["CLIP_VISION_OUTPUT"], "model/conditioning",
                                                                              "CLIP Vision Encode")
    loader = _schema("unCLIPCheckpointLoader")
    assert loader["output"] == ["MODEL", "CLIP", "VAE", "CLIP_VISION"] and loader["category"] == "model/loaders"
    assert loader["display_name"] == "Load unCLIP Checkpoint"
    assert list(loader["input"]["required"]) == ["ckpt_name"]
    unclip = _schema("unCLIPConditioning")
    assert unclip["input"]["required"]["strength"] == ["FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01}]
    assert unclip["input"]["required"]["noise_augmentation"] == ["FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01}]
    assert unclip["category"] == "model/conditioning"
    assert _schema("CLIPVisionLoader")["display_name"] == "Load CLIP Vision"
    assert _schema("CLIPVisionLoader")["category"] == _schema("StyleModelLoader")["category"] == "model/loaders"
    style = _schema("StyleModelApply")
    assert style["input_order"]["required"] == ["conditioning", "style_model", "clip_vision_output", "strength", "strength_type"]
    assert style["input"]["required"]["strength"] == ["FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.001}]
    assert (style["category"], style["display_name"]) == ("model/conditioning", "Apply Style Model")
    assert _schema("StyleModelLoader")["output"] == ["STYLE_MODEL"]
    hyper = _schema("HypernetworkLoader")
    assert hyper["input_order"]["required"] == ["model", "hypernetwork_name", "strength"]
    assert hyper["input"]["required"]["strength"] == ["FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01}]


# --- node behaviour ---------------------------------------------------------------------------


def test_clip_vision_loader_and_crop_option(node_services):
    folder = node_services.folders.model_roots("clip_vision")[0]
    write_tiny_clip_vision(folder / "tiny_vit.safetensors", layout="openclip")
    assert "tiny_vit.safetensors" in nodes_cv.CLIPVisionLoader.INPUT_TYPES()["required"]["clip_name"][0]
    (vision,) = nodes_cv.CLIPVisionLoader().load_clip("tiny_vit.safetensors")
    wide = torch.rand(1, 64, 160, 3, generator=torch.Generator().manual_seed(0))
    (center,) = nodes_cv.CLIPVisionEncode().encode(vision, wide, "center")
    (none,) = nodes_cv.CLIPVisionEncode().encode(vision, wide, "none")
    assert center.image_embeds.shape == none.image_embeds.shape == (1, 768)
    assert center["penultimate_hidden_states"].shape == (1, 50, 32) and center["mm_projected"] is None
    assert not torch.allclose(center.image_embeds, none.image_embeds)
    # the encode is the handle's, on the preprocessed image
    assert torch.equal(center.image_embeds, vision.encode_image(wide, crop=True).image_embeds)
    # the tower was placed by the engine's memory manager, as the text encoders are
    entry = node_services.engine.memory.find(vision.model)
    assert entry is not None and entry.name == "CLIP vision"


def test_unclip_conditioning_appends_and_skips_zero_strength():
    cond = [[torch.zeros(1, 77, 32), {"pooled_output": None}]]
    first, second = object(), object()
    (once,) = nodes_cv.unCLIPConditioning().apply_adm(cond, first, 0.8, 0.1)
    (twice,) = nodes_cv.unCLIPConditioning().apply_adm(once, second, 1.2, 0.0)
    assert [item["clip_vision_output"] for item in twice[0][1]["unclip_conditioning"]] == [first, second]
    assert twice[0][1]["unclip_conditioning"][1] == {"clip_vision_output": second, "strength": 1.2, "noise_augmentation": 0.0}
    assert len(once[0][1]["unclip_conditioning"]) == 1 and "unclip_conditioning" not in cond[0][1]
    assert nodes_cv.unCLIPConditioning().apply_adm(cond, first, 0.0, 0.5)[0] is cond


def test_style_model_nodes_append_tokens(node_services):
    folder = node_services.folders.model_roots("style_models")[0]
    write_tiny_style_model(folder / "style.safetensors")
    (style,) = nodes_cv.StyleModelLoader().load_style_model("style.safetensors")
    hidden = torch.randn(1, 50, 32, generator=torch.Generator().manual_seed(1))
    vision = type("Out", (), {"last_hidden_state": hidden})()
    cond = [[torch.randn(1, 77, 32), {}]]
    (out,) = nodes_cv.StyleModelApply().apply_stylemodel(cond, style, vision, 2.0, "multiply")
    assert out[0][0].shape == (1, 81, 32)
    assert torch.allclose(out[0][0][:, 77:], 2.0 * style.get_cond(vision)[0])


def test_hypernetwork_loader_patches_a_clone(node_services, tmp_path):
    from ldm.model import load_checkpoint
    from ldm.tiny import write_tiny_checkpoint

    model, _, _ = load_checkpoint(write_tiny_checkpoint(tmp_path / "sd1.safetensors", "sd1"),
                                  compute=detect_compute("cpu", force_dtype=torch.float32))
    write_tiny_hypernetwork(node_services.folders.model_roots("hypernetworks")[0] / "h.pt", (32,))
    (patched,) = nodes_cv.HypernetworkLoader().load_hypernetwork(model, "h.pt", 0.5)
    patches = patched.model_options["transformer_options"]["patches"]
    assert patches["attn1_patch"][0] is patches["attn2_patch"][0]
    assert patches["attn2_patch"][0].strength == 0.5
    assert "patches" not in model.model_options.get("transformer_options", {})


# --- end to end -------------------------------------------------------------------------------


def _unclip_prompt(image_name, strength=1.0, with_unclip=True):
    positive = ["6", 0] if with_unclip else ["2", 0]
    return {
        "1": {"class_type": "unCLIPCheckpointLoader", "inputs": {"ckpt_name": "tiny_unclip.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a red square"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": ""}},
        "4": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "5": {"class_type": "CLIPVisionEncode", "inputs": {"clip_vision": ["1", 3], "image": ["4", 0], "crop": "center"}},
        "6": {"class_type": "unCLIPConditioning", "inputs": {"conditioning": ["2", 0], "clip_vision_output": ["5", 0],
                                                             "strength": strength, "noise_augmentation": 0.1}},
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "8": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 3, "steps": 2, "cfg": 4.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "positive": positive,
                                                   "negative": ["3", 0], "latent_image": ["7", 0], "denoise": 1.0}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}},
        "10": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": "unclip"}},
    }


def test_unclip_prompt_runs_to_an_image_that_depends_on_the_reference(tmp_path, unclip_checkpoint):
    folders = FolderPaths.under(tmp_path)
    folders.ensure()
    folders.add_model_root("checkpoints", unclip_checkpoint.parent, first=True)
    services = Services(folders=folders, engine=Engine(detect_compute("cpu", force_dtype=torch.float32)),
                        options=NodeOptions(preview_method="none"))
    registry = NodeRegistry()
    register_builtin_nodes(registry, MODULES)
    rng = numpy.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (48, 80, 3), dtype=numpy.uint8)).save(folders.input / name)

    def run(prompt):
        outcome = Executor(registry, services=services).execute("unclip", prompt, ["10"])
        assert outcome.status == "success", outcome.messages[-1]
        entry = outcome.outputs["10"]["images"][0]
        with Image.open(folders.output / entry["subfolder"] / entry["filename"]) as image:
            return numpy.asarray(image.convert("RGB")).astype(numpy.int16)

    with_a = run(_unclip_prompt("a.png"))
    assert with_a.shape == (64, 64, 3)
    assert (with_a != run(_unclip_prompt("a.png"))).sum() == 0  # deterministic (seeded augmentation)
    assert numpy.abs(with_a - run(_unclip_prompt("b.png"))).max() > 0
    assert numpy.abs(with_a - run(_unclip_prompt("a.png", strength=2.0))).max() > 0
    assert numpy.abs(with_a - run(_unclip_prompt("a.png", with_unclip=False))).max() > 0


def test_photomaker_nodes(node_services, tmp_path):
    from ldm.model import load_checkpoint
    from ldm.tiny import write_tiny_checkpoint
    from ldm.vision.clip_vision import clip_preprocess

    schema = _schema("PhotoMakerEncode")
    assert schema["input"]["required"]["text"] == ["STRING", {"multiline": True, "dynamicPrompts": True,
                                                              "default": "photograph of photomaker"}]
    assert (schema["category"], schema.get("experimental")) == ("_for_testing/photomaker", True)
    assert _schema("PhotoMakerLoader")["output"] == ["PHOTOMAKER"]

    from ldm.vision.tiny import write_tiny_photomaker
    write_tiny_photomaker(node_services.folders.model_roots("photomaker")[0] / "pm.bin")
    (photomaker,) = nodes_cv.PhotoMakerLoader().load_photomaker_model("pm.bin")
    _, clip, _ = load_checkpoint(write_tiny_checkpoint(tmp_path / "sdxl.safetensors", "sdxl"),
                                 compute=detect_compute("cpu", force_dtype=torch.float32))
    image = torch.rand(1, 96, 96, 3, generator=torch.Generator().manual_seed(3))
    (out,) = nodes_cv.PhotoMakerEncode().apply_photomaker(photomaker, image, clip, "photograph of photomaker")
    plain, pooled = clip.encode_from_tokens(clip.tokenize("photograph of photomaker"), return_pooled=True)
    expected = photomaker.fuse_prompt(clip_preprocess(image), plain, 2)
    assert torch.allclose(out[0][0], expected, atol=1e-6)
    assert not torch.allclose(out[0][0][:, 2], plain[:, 2])
    assert torch.equal(out[0][1]["pooled_output"], pooled)
    (no_trigger,) = nodes_cv.PhotoMakerEncode().apply_photomaker(photomaker, image, clip, "photograph of a man")
    assert torch.equal(no_trigger[0][0], clip.encode_from_tokens(clip.tokenize("photograph of a man")))


def test_gligen_schema_and_box_conditioning(node_services, tmp_path):
    from ldm.model import load_checkpoint
    from ldm.tiny import write_tiny_checkpoint

    apply = _schema("GLIGENTextBoxApply")
    assert apply["input_order"]["required"] == ["conditioning_to", "clip", "gligen_textbox_model", "text",
                                                "width", "height", "x", "y"]
    assert apply["input"]["required"]["width"] == ["INT", {"default": 64, "min": 8, "max": 16384, "step": 8}]
    assert apply["input"]["required"]["x"] == ["INT", {"default": 0, "min": 0, "max": 16384, "step": 8}]
    assert (apply["category"], _schema("GLIGENLoader")["output"]) == ("model/conditioning/gligen", ["GLIGEN"])
    assert (apply["display_name"], _schema("GLIGENLoader")["display_name"]) == ("Apply GLIGEN Text Box",
                                                                                "Load GLIGEN Model")
    assert _schema("GLIGENLoader")["category"] == "model/loaders"

    _, clip, _ = load_checkpoint(write_tiny_checkpoint(tmp_path / "sd1.safetensors", "sd1"),
                                 compute=detect_compute("cpu", force_dtype=torch.float32))
    gligen = object()
    cond = [[torch.zeros(1, 77, 32), {"pooled_output": None}]]
    (once,) = nodes_cv.GLIGENTextBoxApply().append(cond, clip, gligen, "a cat", 64, 32, 16, 8)
    (twice,) = nodes_cv.GLIGENTextBoxApply().append(once, clip, gligen, "a dog", 24, 24, 0, 0)
    kind, model, boxes = twice[0][1]["gligen"]
    assert kind == "position" and model is gligen and len(boxes) == 2
    _, pooled = clip.encode_from_tokens(clip.tokenize("a cat"), return_pooled=True)
    assert torch.equal(boxes[0][0], pooled) and boxes[0][1:] == (4, 8, 1, 2)  # (h, w, y, x) / 8
    assert boxes[1][1:] == (3, 3, 0, 0) and len(once[0][1]["gligen"][2]) == 1 and "gligen" not in cond[0][1]


def test_gligen_prompt_changes_the_image_where_the_box_is(tmp_path):
    from ldm.loading.checkpoint import save_state_dict
    from ldm.model import load_checkpoint
    from ldm.tiny import write_tiny_checkpoint
    from ldm.vision.tiny import tiny_gligen_state_dict

    folders = FolderPaths.under(tmp_path)
    folders.ensure()
    checkpoint = write_tiny_checkpoint(folders.model_roots("checkpoints")[0] / "tiny_sd1.safetensors", "sd1")
    model, _, _ = load_checkpoint(checkpoint, compute=detect_compute("cpu", force_dtype=torch.float32))
    save_state_dict(folders.model_roots("gligen")[0] / "gligen.safetensors",
                    tiny_gligen_state_dict(model.config, key_dim=32, seed=2))
    services = Services(folders=folders, engine=Engine(detect_compute("cpu", force_dtype=torch.float32)),
                        options=NodeOptions(preview_method="none"))
    registry = NodeRegistry()
    register_builtin_nodes(registry, MODULES)

    def run(box):
        prompt = {
            "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny_sd1.safetensors"}},
            "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a cat and a dog"}},
            "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": ""}},
            "4": {"class_type": "GLIGENLoader", "inputs": {"gligen_name": "gligen.safetensors"}},
            "5": {"class_type": "GLIGENTextBoxApply", "inputs": {"conditioning_to": ["2", 0], "clip": ["1", 1],
                                                                 "gligen_textbox_model": ["4", 0], "text": "a cat",
                                                                 "width": 32, "height": 32, "x": box, "y": box}},
            "6": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "7": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 1, "steps": 2, "cfg": 4.0,
                                                       "sampler_name": "euler", "scheduler": "normal",
                                                       "positive": ["5", 0] if box is not None else ["2", 0],
                                                       "negative": ["3", 0], "latent_image": ["6", 0], "denoise": 1.0}},
            "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["1", 2]}},
            "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "gligen"}},
        }
        if box is None:
            del prompt["4"], prompt["5"]
        outcome = Executor(registry, services=services).execute("gligen", prompt, ["9"])
        assert outcome.status == "success", outcome.messages[-1]
        entry = outcome.outputs["9"]["images"][0]
        with Image.open(folders.output / entry["subfolder"] / entry["filename"]) as image:
            return numpy.asarray(image.convert("RGB")).astype(numpy.int16)

    plain, top_left, bottom_right = run(None), run(0), run(32)
    assert numpy.abs(top_left - plain).max() > 0
    assert numpy.abs(top_left - bottom_right).max() > 0
    assert (run(0) == top_left).all()
