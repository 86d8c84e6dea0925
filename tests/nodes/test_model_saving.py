"""nodes.model_saving (and CheckpointSave): files in ComfyUI's layouts, patches baked in, read back
by Weft's loaders; LoRA extraction; .latent files; saved conditionings."""

from __future__ import annotations

import json

import pytest
import torch

from graph.registry import NodeRegistry
from ldm.devices import detect_compute
from ldm.loading.checkpoint import load_state_dict, save_state_dict
from ldm.lora import patches as lora
from ldm.model import load_checkpoint, load_unet, load_vae
from ldm.text import build_clip_from_files
from ldm.tiny import write_tiny_checkpoint
from nodes import loaders, model_merging, model_saving as S
from tests.nodes.sampling_support import one_torch_thread  # noqa: F401 (autouse fixture)

FP32 = detect_compute("cpu", force_dtype=torch.float32)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saving")
    return {name: write_tiny_checkpoint(folder / f"{name}.safetensors", family, seed=seed, dtype=torch.float32)
            for name, family, seed in (("sd1_a", "sd1", 1), ("sd1_b", "sd1", 2), ("sdxl", "sdxl", 3),
                                       ("sd2_v", "sd2_v", 4))}


def load(checkpoints, name):
    return load_checkpoint(checkpoints[name], compute=FP32)


def effective(module, patches) -> dict[str, torch.Tensor]:
    with lora.patched(module, patches):
        return {k: v.clone() for k, v in module.state_dict().items()}


def only_file(folder):
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert len(files) == 1, files
    return files[0]


def test_schema_is_comfyuis():
    registry = NodeRegistry()
    assert registry.register_mappings(S.NODE_CLASS_MAPPINGS, S.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    info = registry.object_info()
    for name, default in (("ModelSave", "diffusion_models/ComfyUI"), ("CLIPSave", "clip/ComfyUI"),
                          ("VAESave", "vae/ComfyUI_vae")):
        assert info[name]["input"]["required"]["filename_prefix"] == ("STRING", {"default": default})
        assert info[name]["category"] == "advanced/model_merging" and info[name]["output_node"] is True
        assert info[name]["input"]["hidden"] == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    lora_save = info["LoraSave"]
    assert (lora_save["display_name"], lora_save["category"], lora_save["experimental"]) == (
        "Extract and Save Lora", "_for_testing", True)
    assert lora_save["input"]["required"]["rank"] == ("INT", {"default": 8, "min": 1, "max": 4096, "step": 1})
    assert lora_save["input"]["required"]["lora_type"] == (["standard", "full_diff"],)
    assert list(lora_save["input"]["optional"]) == ["model_diff", "text_encoder_diff"]
    assert info["SaveLatent"]["input"]["required"]["filename_prefix"] == ("STRING", {"default": "latents/ComfyUI"})
    assert (info["SaveLatent"]["category"], info["SaveLatent"]["display_name"]) == ("model/latent", "Save Latent")
    assert (info["SaveLatent"]["output"], info["SaveLatent"]["output_name"]) == (["LATENT"], ["samples"])
    assert info["SaveLatent"]["output_node"] is True
    assert (info["LoadLatent"]["category"], info["LoadLatent"]["display_name"]) == ("model/latent", "Load Latent")
    assert info["LoadLatent"]["output"] == ["LATENT"]
    save_cond = info["SaveConditioning"]
    assert (save_cond["display_name"], save_cond["category"], save_cond["output_node"]) == (
        "Save Conditioning", "model/conditioning", True)
    assert save_cond["output_name"] == ["conditioning"]
    assert (info["ConditioningLoader"]["display_name"], info["ConditioningLoader"]["category"]) == (
        "Load Conditioning", "model/loaders")


@pytest.mark.parametrize("name", ["sd1_a", "sdxl"])
def test_checkpoint_save_writes_merged_weights_and_text_encoders_that_load_back(node_services, checkpoints, name):
    model, clip, vae = load(checkpoints, name)
    other_model, other_clip, _ = load(checkpoints, name)
    (merged,) = model_merging.ModelMergeAdd().merge(model, other_model)  # weights doubled, lazily
    (clip_merged,) = model_merging.CLIPMergeSimple().merge(clip, other_clip, 0.5)
    loaders.CheckpointSave().save(merged, clip_merged, vae, "checkpoints/merged", prompt={"1": {}})
    path = only_file(node_services.folders.output / "checkpoints")
    assert path.name == "merged_00001_.safetensors"
    saved, metadata = load_state_dict(path)
    assert metadata["prompt"] == '{"1": {}}'
    again, clip_again, vae_again = load_checkpoint(path, compute=FP32)
    assert (again.family, again.config) == (model.family, model.config)
    expected = {k: 2 * v for k, v in model.unet.state_dict().items()}
    for key, value in again.unet.state_dict().items():
        torch.testing.assert_close(value, expected[key], msg=key)
    for key, value in clip_again.encoders.state_dict().items():
        torch.testing.assert_close(value, clip.encoders.state_dict()[key], msg=key)
    for key, value in vae_again.model.state_dict().items():
        assert torch.equal(value, vae.model.state_dict()[key])
    if name == "sdxl":
        assert metadata["modelspec.architecture"] == "stable-diffusion-xl-v1-base"
        assert metadata["modelspec.title"] == "merged 1"
        assert any(k.startswith("conditioner.embedders.1.model.transformer.resblocks.") for k in saved)
        assert any(k.startswith("conditioner.embedders.0.transformer.text_model.") for k in saved)
    else:
        assert any(k.startswith("cond_stage_model.transformer.text_model.") for k in saved)


def test_model_save_writes_the_unet_with_comfyuis_prediction_markers(node_services, checkpoints):
    model, _, _ = load(checkpoints, "sd2_v")
    (scaled,) = model_merging.UNetSelfAttentionMultiply().patch(model, 0.5, 1.0, 1.0, 1.0)
    S.ModelSave().save(scaled, "diffusion_models/v", extra_pnginfo={"workflow": {"nodes": []}})
    path = only_file(node_services.folders.output)
    saved, metadata = load_state_dict(path)
    assert {k for k in saved if not k.startswith("model.diffusion_model.")} == {"v_pred"}
    assert metadata["modelspec.predict_key"] == "v" and metadata["workflow"] == '{"nodes": []}'
    assert metadata["prompt"] == ""
    again = load_unet(path, compute=FP32)
    assert (again.family, again.prediction) == ("sd2_v", "v")
    expected = effective(scaled.unet, scaled.patches)
    for key, value in again.unet.state_dict().items():
        torch.testing.assert_close(value, expected[key], msg=key)
    assert not torch.equal(expected["input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"],
                           model.unet.state_dict()["input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"])


def test_clip_save_writes_one_hf_layout_file_per_tower(node_services, checkpoints):
    _, clip, _ = load(checkpoints, "sdxl")
    (scaled,) = model_merging.CLIPAttentionMultiply().patch(clip, 1.0, 1.0, 2.0, 1.0)
    S.CLIPSave().save(scaled, "clip/ComfyUI", prompt={"2": {}})
    folder = node_services.folders.output / "clip"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["ComfyUI_clip_g_00001_.safetensors", "ComfyUI_clip_l_00001_.safetensors"]
    files = [load_state_dict(folder / n) for n in reversed(names)]
    assert all(meta["format"] == "pt" and meta["prompt"] == '{"2": {}}' for _, meta in files)
    assert all(k.startswith(("text_model.", "text_projection.")) for sd, _ in files for k in sd)
    reloaded = build_clip_from_files([sd for sd, _ in files], "sdxl")
    tokens = clip.tokenize("a small red cube")
    torch.testing.assert_close(reloaded.encode_from_tokens(tokens), scaled.encode_from_tokens(tokens))
    assert not torch.allclose(reloaded.encode_from_tokens(tokens), clip.encode_from_tokens(tokens))


def test_vae_save_round_trips(node_services, checkpoints):
    node_services.options.disable_metadata = True
    _, _, vae = load(checkpoints, "sd1_a")
    S.VAESave().save(vae, "vae/ComfyUI_vae", prompt={"1": {}})
    path = only_file(node_services.folders.output)
    assert path.relative_to(node_services.folders.output).as_posix() == "vae/ComfyUI_vae_00001_.safetensors"
    saved, metadata = load_state_dict(path)
    assert metadata == {} and "encoder.conv_in.weight" in saved
    again = load_vae(path, compute=FP32)
    for key, value in again.model.state_dict().items():
        assert torch.equal(value, vae.model.state_dict()[key])


def lora_applied(node_services, base_model, base_clip, path, strength=1.0):
    lora_sd, _ = load_state_dict(path)
    model, clip = lora.load_lora_for_models(base_model, base_clip, lora_sd, strength, strength)
    text = effective(clip.encoders, clip.patches) if clip is not None else None
    return effective(model.unet, model.patches), text, lora_sd


def test_full_diff_lora_reproduces_the_difference(node_services, checkpoints):
    (m1, c1, _), (m2, c2, _) = load(checkpoints, "sd1_a"), load(checkpoints, "sd1_b")
    (model_diff,) = model_merging.ModelMergeSubtract().merge(m2, m1, 1.0)
    (clip_diff,) = model_merging.CLIPMergeSubtract().merge(c2, c1, 1.0)
    S.LoraSave().save("loras/diff", 8, "full_diff", True, model_diff=model_diff, text_encoder_diff=clip_diff)
    unet, text, lora_sd = lora_applied(node_services, m1, c1, only_file(node_services.folders.output))
    assert all(v.dtype == torch.float16 for v in lora_sd.values())
    assert any(k.startswith("text_encoders.clip_l.transformer.text_model.") for k in lora_sd)
    for key, value in m2.unet.state_dict().items():
        torch.testing.assert_close(unet[key], value, atol=2e-3, rtol=2e-3, msg=key)
    for key, value in c2.encoders.state_dict().items():
        torch.testing.assert_close(text[key], value, atol=2e-3, rtol=2e-3, msg=key)


def comfy_extract(diff: torch.Tensor, rank: int) -> torch.Tensor:
    """ComfyUI's extraction written out as its paper trail says: full SVD of the [out, in·k·k]
    matrix, ``U[:, :r]·diag(S[:r])`` and ``Vh[:r]``, both clamped at the 0.99 quantile; the product."""
    matrix = diff.float().reshape(diff.shape[0], -1)
    u, s, vh = torch.linalg.svd(matrix, full_matrices=True)
    rank = min(rank, *diff.shape[:2])
    up, down = u[:, :rank] @ torch.diag(s[:rank]), vh[:rank, :]
    high = torch.quantile(torch.cat([up.flatten(), down.flatten()]), 0.99)
    return (up.clamp(-high, high) @ down.clamp(-high, high)).reshape(diff.shape)


def test_standard_lora_is_comfyuis_clamped_truncated_svd(node_services, checkpoints):
    (m1, _, _), (m2, _, _) = load(checkpoints, "sd1_a"), load(checkpoints, "sd1_b")
    (model_diff,) = model_merging.ModelMergeSubtract().merge(m2, m1, 1.0)
    w1, w2 = m1.unet.state_dict(), m2.unet.state_dict()
    names = ("input_blocks.1.1.proj_in.weight",  # 1x1 conv or linear
             "input_blocks.1.0.in_layers.2.weight",  # 3x3 conv
             "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight")  # linear
    for rank, prefix, bias_diff in ((4096, "full", True), (2, "low", False)):
        S.LoraSave().save(f"loras/{prefix}", rank, "standard", bias_diff, model_diff=model_diff)
        path = node_services.folders.output / "loras" / f"{prefix}_00001_.safetensors"
        unet, _, lora_sd = lora_applied(node_services, m1, None, path)
        for name in names:
            difference = w2[name] - w1[name]
            torch.testing.assert_close(unet[name] - w1[name], comfy_extract(difference, rank), atol=2e-3, rtol=1e-2)
            kept = min(rank, *difference.shape[:2])
            assert lora_sd[f"diffusion_model.{name[:-len('.weight')]}.lora_down.weight"].shape[0] == kept
            error = (unet[name] - w2[name]).norm()
            optimum = torch.linalg.svdvals(difference.flatten(1))[kept:].norm()  # Eckart-Young
            assert error >= optimum - 1e-3 and error < difference.norm()
        if bias_diff:  # biases and norm scales travel whole, as .diff_b / .diff
            assert "diffusion_model.out.0.diff" in lora_sd and "diffusion_model.out.2.diff_b" in lora_sd
            torch.testing.assert_close(unet["out.2.bias"], w2["out.2.bias"], atol=2e-3, rtol=2e-3)
            torch.testing.assert_close(unet["out.0.weight"], w2["out.0.weight"], atol=2e-3, rtol=2e-3)
        else:
            assert not any(k.endswith((".diff", ".diff_b")) for k in lora_sd)
    assert S.LoraSave().save("loras/none", 8, "standard", True) == {}
    assert not (node_services.folders.output / "loras" / "none_00001_.safetensors").exists()


def test_latents_round_trip_and_old_files_are_rescaled(node_services):
    samples = torch.randn(2, 4, 8, 6)
    latent = {"samples": samples}
    result = S.SaveLatent().save(latent, "latents/ComfyUI", prompt={"3": {}})
    assert result["ui"] == {"latents": [{"filename": "ComfyUI_00001_.latent", "subfolder": "latents",
                                         "type": "output"}]}
    # the latent passes through unchanged, so the node can sit inside a chain
    assert len(result["result"]) == 1 and result["result"][0] is latent
    path = node_services.folders.output / "latents" / "ComfyUI_00001_.latent"
    tensors, metadata = load_state_dict(path)
    assert set(tensors) == {"latent_tensor", "latent_format_version_0"} and metadata["prompt"] == '{"3": {}}'
    node_services.folders.input.mkdir(parents=True, exist_ok=True)
    (node_services.folders.input / "mine.latent").write_bytes(path.read_bytes())
    save_state_dict(node_services.folders.input / "old.latent", {"latent_tensor": samples * 0.18215})
    assert S.LoadLatent.INPUT_TYPES()["required"]["latent"][0] == ["mine.latent", "old.latent"]
    (loaded,) = S.LoadLatent().load("mine.latent")
    assert torch.equal(loaded["samples"], samples)
    (old,) = S.LoadLatent().load("old.latent")
    torch.testing.assert_close(old["samples"], samples)
    (output,) = S.LoadLatent().load("latents/ComfyUI_00001_.latent [output]")
    assert torch.equal(output["samples"], samples)
    assert S.LoadLatent.IS_CHANGED("mine.latent") != S.LoadLatent.IS_CHANGED("old.latent")
    assert S.LoadLatent.VALIDATE_INPUTS("missing.latent") == "Invalid latent file: missing.latent"
    assert S.LoadLatent.VALIDATE_INPUTS("../escape.latent") == "Invalid latent file: ../escape.latent"
    assert S.LoadLatent.VALIDATE_INPUTS("mine.latent") is True


def test_conditioning_saves_and_loads_back(node_services):
    cond = torch.randn(1, 77, 32)
    options = {"pooled_output": torch.randn(1, 32), "strength": 0.5, "set_area_to_bounds": False,
               "hooks": None, "reference_latents": [torch.ones(1, 4, 2, 2), torch.zeros(1, 4, 3, 3)]}
    (passed,) = S.SaveConditioning().save([[cond, options]], "conditioning/ComfyUI")
    assert passed[0][0] is cond
    path = only_file(node_services.folders.output)
    _, metadata = load_state_dict(path)
    assert json.loads(metadata["conditioning_options"]) == {"strength": 0.5, "set_area_to_bounds": False}
    embeddings = node_services.folders.model_roots("embeddings")[0]
    embeddings.mkdir(parents=True, exist_ok=True)
    (embeddings / "saved.safetensors").write_bytes(path.read_bytes())
    assert "saved.safetensors" in S.ConditioningLoader.INPUT_TYPES()["required"]["conditioning_name"][0]
    ((loaded, loaded_options),) = S.ConditioningLoader().load("saved.safetensors")[0]
    assert torch.equal(loaded, cond) and torch.equal(loaded_options["pooled_output"], options["pooled_output"])
    assert loaded_options["strength"] == 0.5 and loaded_options["set_area_to_bounds"] is False
    assert [t.shape for t in loaded_options["reference_latents"]] == [(1, 4, 2, 2), (1, 4, 3, 3)]
    assert "hooks" not in loaded_options
    save_state_dict(embeddings / "embedding.safetensors", {"emb_params": torch.zeros(2, 32)})
    with pytest.raises(ValueError, match="no 'conditioning' tensor"):
        S.ConditioningLoader().load("embedding.safetensors")
    with pytest.raises(ValueError, match="single conditioning entry"):
        S.SaveConditioning().save([[cond, {}], [cond, {}]], "conditioning/ComfyUI")
    with pytest.raises(ValueError, match="can't be saved"):
        S.SaveConditioning().save([[cond, {"control": object()}]], "conditioning/ComfyUI")
