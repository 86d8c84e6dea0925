"""nodes.lora_training: ComfyUI's LoRA-training nodes on a tiny SD1 model — the schema, a run that
lowers the denoising loss, the saved file read back by Weft's LoRA loader, resuming, the loss plot."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from graph.protocol import describe
from ldm.loading.checkpoint import load_state_dict
from ldm.lora.patches import load_lora_for_models
from ldm.model import assemble_checkpoint
from ldm.sampling.denoiser import UNetDenoiser
from ldm.sampling.from_handle import model_sampling_of
from ldm.tiny import tiny_checkpoint
from nodes import lora_training as lt


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny_sd1():
    state_dict, metadata = tiny_checkpoint("sd1", dtype=torch.float32)
    model, clip, _ = assemble_checkpoint(state_dict, metadata, "tiny-sd1")
    return model, clip


@pytest.fixture
def sd1():
    # One per test: each test's engine may leave LoRA patches in the shared UNet's weights (the
    # memory manager restores them lazily, when its next run needs other patches).
    return _tiny_sd1()


def _original_weight(key: str) -> torch.Tensor:
    """A UNet weight as the tiny checkpoint holds it (the shared UNet may hold a patched copy
    between runs: the memory manager restores weights lazily)."""
    return tiny_checkpoint("sd1", dtype=torch.float32)[0][f"model.diffusion_model.{key}"]


@pytest.fixture(scope="module")
def latent():
    return torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))


def _cond(clip, text="a red cat"):
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))


def _train(model, latents, positive, **overrides):
    """TrainLoraNode.train with every input wrapped in a list, as the executor hands them."""
    settings = dict(batch_size=1, grad_accumulation_steps=1, steps=12, learning_rate=0.005, rank=4,
                    optimizer="AdamW", loss_function="MSE", seed=0, training_dtype="fp32", lora_dtype="fp32",
                    quantized_backward=False, algorithm="LoRA", gradient_checkpointing=True, checkpoint_depth=1,
                    offloading=False, existing_lora="[None]", bucket_mode=False, bypass_mode=False)
    settings.update(overrides)
    wrapped = {key: [value] for key, value in settings.items()}
    return lt.TrainLoraNode().train(model=[model], latents=latents, positive=positive, **wrapped)


def _denoising_error(services, model, latent, cond) -> float:
    """x0 error of ``model`` on ``latent`` at eight fixed noise levels and a fixed noise draw."""
    sampling = model_sampling_of(model)
    clean = model.latent_format.process_in(latent).repeat(8, 1, 1, 1)
    sigma = torch.tensor([sampling.percent_to_sigma(p) for p in torch.linspace(0.2, 0.9, 8).tolist()])
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(5))
    with services.engine.use_unet(model) as runnable, torch.no_grad():
        denoised = UNetDenoiser(runnable.module, sampling)(clean + noise * sigma[:, None, None, None], sigma,
                                                           {"c_crossattn": cond[0][0].repeat(8, 1, 1)})
    return torch.nn.functional.mse_loss(denoised, clean).item()


def _unet_output(services, model, latent, cond) -> torch.Tensor:
    with services.engine.use_unet(model) as runnable, torch.no_grad():
        return runnable.module(latent, torch.tensor([500.0]), context=cond[0][0])


# -- schema ----------------------------------------------------------------------------------------------

def test_schemas_are_comfyuis():
    train = describe("TrainLoraNode", lt.TrainLoraNode, "Train LoRA")
    assert train.input_is_list and train.category == "model/training"
    assert list(lt.TrainLoraNode.INPUT_TYPES()["required"]) == [
        "model", "latents", "positive", "batch_size", "grad_accumulation_steps", "steps", "learning_rate", "rank",
        "optimizer", "loss_function", "seed", "training_dtype", "lora_dtype", "quantized_backward", "algorithm",
        "gradient_checkpointing", "checkpoint_depth", "offloading", "existing_lora", "bucket_mode", "bypass_mode"]
    assert lt.TrainLoraNode.RETURN_TYPES == ("LORA_MODEL", "LOSS_MAP", "INT")
    assert lt.TrainLoraNode.RETURN_NAMES == ("lora", "loss_map", "steps")
    required = lt.TrainLoraNode.INPUT_TYPES()["required"]
    assert required["optimizer"][0] == ["AdamW", "Adam", "SGD", "RMSprop"]
    assert required["loss_function"][0] == ["MSE", "L1", "Huber", "SmoothL1"]
    assert required["training_dtype"][0] == ["bf16", "fp32", "none"]
    assert required["learning_rate"][1]["default"] == 0.0005 and required["rank"][1]["max"] == 128
    assert required["existing_lora"][0][-1] == "[None]" and required["existing_lora"][1]["default"] == "[None]"
    loader = lt.LoraModelLoader.INPUT_TYPES()["required"]
    assert list(loader) == ["model", "lora", "strength_model", "bypass"]
    assert (loader["strength_model"][1]["min"], loader["strength_model"][1]["max"]) == (-100.0, 100.0)
    assert lt.LoraModelLoader.CATEGORY == "model/loaders"
    for name in ("SaveLoRA", "SaveLoRANode"):
        node = lt.NODE_CLASS_MAPPINGS[name]
        assert describe(name, node).output_node
        assert node.INPUT_TYPES()["required"]["prefix"][1]["default"] == "loras/ComfyUI_trained_lora"
    assert lt.SaveLoRANode.INPUT_TYPES()["optional"]["steps"][1]["forceInput"] is True
    assert "forceInput" not in lt.SaveLoRA.INPUT_TYPES()["optional"]["steps"][1]
    assert describe("LossGraphNode", lt.LossGraphNode).output_node
    assert lt.LossGraphNode.INPUT_TYPES()["hidden"] == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}


# -- training --------------------------------------------------------------------------------------------

def test_training_lowers_the_denoising_error_and_leaves_the_model_alone(node_services, sd1, latent):
    model, clip = sd1
    cond = _cond(clip)
    before_weights = {k: v.clone() for k, v in model.unet.state_dict().items()}
    lora_sd, loss_map, steps = _train(model, [{"samples": latent}], [cond], steps=20)

    assert steps == 20 and len(loss_map["loss"]) == 20
    assert all(np.isfinite(loss_map["loss"]))
    # The input MODEL is untouched: same tensors, no parametrization or patch left behind.
    assert model.patches == {}
    after = model.unet.state_dict()
    assert after.keys() == before_weights.keys()
    assert all(torch.equal(after[k], before_weights[k]) for k in after)
    assert not any("forward" in m.__dict__ for m in model.unet.modules())
    trained = lt.LoraModelLoader().load_lora_model(model, lora_sd, 1.0)[0]
    base_error = _denoising_error(node_services, model, latent, cond)
    trained_error = _denoising_error(node_services, trained, latent, cond)
    assert trained_error < 0.8 * base_error


def test_lora_covers_every_layer_in_comfyuis_naming(node_services, sd1, latent):
    model, clip = sd1
    lora_sd, _, _ = _train(model, [{"samples": latent}], [_cond(clip)], steps=1)
    proj = "diffusion_model.input_blocks.1.1.proj_in"  # a 1x1 convolution (use_linear_in_transformer off)
    conv = model.unet.get_submodule("input_blocks.1.1.proj_in").weight
    assert lora_sd[f"{proj}.lora_up.weight"].shape == (conv.shape[0], 4)
    assert lora_sd[f"{proj}.lora_down.weight"].shape == (4, conv.shape[1:].numel())
    assert float(lora_sd[f"{proj}.alpha"]) == 1.0
    assert f"{proj}.diff_b" in lora_sd
    assert "diffusion_model.input_blocks.1.1.norm.diff" in lora_sd  # GroupNorm weight: a full difference
    adapted_modules = {k.rsplit(".", 2)[0] for k in lora_sd if k.endswith(".lora_up.weight")}
    expected = {f"diffusion_model.{name}" for name, m in model.unet.named_modules()
                if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}
    assert adapted_modules == expected


def test_saved_lora_loads_back_through_weft_lora_loader(node_services, sd1, latent):
    model, clip = sd1
    cond = _cond(clip)
    lora_sd, _, steps = _train(model, [{"samples": latent}], [cond], steps=6)
    lt.SaveLoRA().save(lora_sd, "loras/trained", steps)
    path = node_services.folders.output / "loras" / "trained_6_steps_00001_.safetensors"
    assert path.is_file()
    lt.SaveLoRANode().save(lora_sd, "plain")
    lt.SaveLoRANode().save(lora_sd, "plain")
    assert (node_services.folders.output / "plain_00002_.safetensors").is_file()

    reloaded, _ = load_state_dict(path)
    from_file = load_lora_for_models(model, None, reloaded, 1.0, 0.0)[0]
    in_memory = lt.LoraModelLoader().load_lora_model(model, lora_sd, 1.0)[0]
    assert len(from_file.patches) == len(lora_sd) - 2 * sum(k.endswith(".alpha") for k in lora_sd)
    torch.testing.assert_close(_unet_output(node_services, from_file, latent, cond),
                               _unet_output(node_services, in_memory, latent, cond))
    # The patched weight is W + (alpha / rank) up @ down, computed here by hand.
    prefix = "diffusion_model.middle_block.1.proj_out"
    weight = _original_weight("middle_block.1.proj_out.weight")
    expected = weight + (reloaded[f"{prefix}.lora_up.weight"] @ reloaded[f"{prefix}.lora_down.weight"]
                         ).reshape(weight.shape) / 4
    with node_services.engine.use_unet(from_file) as runnable:
        torch.testing.assert_close(runnable.module.get_submodule("middle_block.1.proj_out").weight.detach(),
                                   expected.detach())
    assert not torch.allclose(expected, weight)


def test_the_loaded_file_reproduces_the_network_as_trained(node_services, sd1, latent):
    from ldm.training.lora_trainer import attached, build_adapters, existing_adapters
    model, clip = sd1
    cond = _cond(clip)
    lora_sd, _, steps = _train(model, [{"samples": latent}], [cond], steps=4, learning_rate=0.01)
    lt.SaveLoRA().save(lora_sd, "run", steps)
    reloaded, _ = load_state_dict(node_services.folders.output / "run_4_steps_00001_.safetensors")
    # The network as the trainer ran it: the adapters attached as parametrizations.
    adapters = build_adapters(model.unet, 4, torch.Generator(), existing_adapters(model.unet, reloaded))
    with attached(model.unet, adapters), torch.no_grad():
        as_trained = model.unet(latent, torch.tensor([500.0]), context=cond[0][0])
    from_file = load_lora_for_models(model, None, reloaded, 1.0, 0.0)[0]
    torch.testing.assert_close(_unet_output(node_services, from_file, latent, cond), as_trained,
                               rtol=1e-4, atol=1e-5)
    assert not torch.allclose(_unet_output(node_services, model, latent, cond), as_trained, atol=1e-4)


def test_strength_scales_the_update_and_zero_returns_the_model(node_services, sd1, latent):
    model, clip = sd1
    lora_sd, _, _ = _train(model, [{"samples": latent}], [_cond(clip)], steps=3)
    assert lt.LoraModelLoader().load_lora_model(model, lora_sd, 0.0)[0] is model
    key = "middle_block.1.proj_out.weight"
    original = _original_weight(key)

    def patched_weight(strength):
        handle = lt.LoraModelLoader().load_lora_model(model, lora_sd, strength)[0]
        with node_services.engine.use_unet(handle) as runnable:
            return runnable.module.state_dict()[key].clone()

    torch.testing.assert_close(patched_weight(-2.0) - original, -2.0 * (patched_weight(1.0) - original),
                               rtol=1e-4, atol=1e-6)


def test_gradient_checkpointing_changes_memory_not_results(node_services, sd1, latent):
    model, clip = sd1
    runs = [_train(model, [{"samples": latent}], [_cond(clip)], steps=3, gradient_checkpointing=flag,
                   checkpoint_depth=depth) for flag, depth in ((False, 1), (True, 1), (True, 3))]
    for lora_sd, loss_map, _ in runs[1:]:
        np.testing.assert_allclose(loss_map["loss"], runs[0][1]["loss"], rtol=1e-5)
        for key, tensor in lora_sd.items():
            torch.testing.assert_close(tensor, runs[0][0][key], rtol=1e-5, atol=1e-7)


def test_same_seed_same_lora_other_seed_other_lora(node_services, sd1, latent):
    model, clip = sd1
    first, second, other = (_train(model, [{"samples": latent}], [_cond(clip)], steps=2, seed=seed)[0]
                            for seed in (3, 3, 4))
    key = "diffusion_model.out.2.lora_up.weight"
    assert torch.equal(first[key], second[key]) and not torch.equal(first[key], other[key])


def test_existing_lora_is_continued_and_its_steps_counted(node_services, sd1, latent):
    model, clip = sd1
    cond = _cond(clip)
    lora_sd, _, _ = _train(model, [{"samples": latent}], [cond], steps=4)
    import safetensors.torch
    name = "mine_4_steps_00001_.safetensors"
    safetensors.torch.save_file(lora_sd, node_services.folders.model_roots("loras")[0] / name)
    # One SGD step at the smallest learning rate: the result is the existing LoRA, barely moved.
    resumed, loss_map, steps = _train(model, [{"samples": latent}], [cond], steps=1, existing_lora=name,
                                      optimizer="SGD", learning_rate=0.0000001, rank=8)
    assert steps == 5 and len(loss_map["loss"]) == 1
    assert resumed.keys() == lora_sd.keys()
    key = "diffusion_model.middle_block.1.proj_out.lora_down.weight"
    assert resumed[key].shape == lora_sd[key].shape  # the file's rank (4), not the input's (8)
    torch.testing.assert_close(resumed[key], lora_sd[key], rtol=0, atol=1e-5)
    assert lora_sd[key].abs().max() > 1e-3  # it had moved away from its zero start


def test_batches_of_different_sizes_and_buckets(node_services, sd1):
    model, clip = sd1
    g = torch.Generator().manual_seed(1)
    small, large = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 16, generator=g)
    conds = [_cond(clip, "small"), _cond(clip, "large")]
    lora_sd, loss_map, _ = _train(model, [{"samples": small}, {"samples": large}], conds, steps=2, batch_size=2)
    assert len(loss_map["loss"]) == 2 and all(torch.isfinite(t).all() for t in lora_sd.values())
    buckets = [{"samples": torch.cat([small, small])}, {"samples": large}]
    bucket_conds = [[conds[0][0], conds[0][0]], [conds[1][0]]]
    _, loss_map, _ = _train(model, buckets, bucket_conds, steps=3, bucket_mode=True, grad_accumulation_steps=2)
    assert len(loss_map["loss"]) == 6
    with pytest.raises(ValueError, match="does not match number of images"):
        _train(model, [{"samples": torch.cat([small, small, small])}], [conds[0] + conds[1]], steps=1)


def test_an_interrupted_run_leaves_the_unet_as_it_was(node_services, sd1, latent):
    from torch.nn.utils import parametrize

    from graph.context import ExecutionContext, InterruptFlag, Interrupted, use_context
    model, clip = sd1
    cond = _cond(clip)
    flag = InterruptFlag()
    flag.request()  # the first progress report (after step 1 of 5) stops the run
    with use_context(ExecutionContext("p", "1", "1", node_services, flag)), pytest.raises(Interrupted):
        _train(model, [{"samples": latent}], [cond], steps=5)
    assert not any(parametrize.is_parametrized(m) for m in model.unet.modules())
    assert not any("forward" in m.__dict__ for m in model.unet.modules())
    assert all(not p.requires_grad for p in model.unet.parameters())


# -- loss graph ------------------------------------------------------------------------------------------

def test_loss_graph_is_drawn_as_comfyui_draws_it_and_saved_as_a_preview(node_services):
    losses = [3.0, 1.0, 2.0, 1.5]
    result = lt.LossGraphNode().plot_loss({"loss": losses}, "loss_graph", prompt={"1": {}}, extra_pnginfo=None)
    (entry,) = result["ui"]["images"]
    assert entry["type"] == "temp" and entry["filename"].startswith("ComfyUI_temp_")
    with Image.open(node_services.folders.temp / entry["filename"]) as saved:
        assert saved.info.get("prompt") == '{"1": {}}'
        pixels = np.asarray(saved.convert("RGB")).astype(int)
    assert pixels.shape == (520, 840, 3)
    black, blue, white = (0, 0, 0), (0, 0, 255), (255, 255, 255)
    assert tuple(pixels[300, 40]) == black and tuple(pixels[480, 600]) == black  # y- and x-axis
    # ComfyUI's layout: point i at x = 40 + int(i / n * 800), y = 480 - int((l - min) / (max - min) * 480).
    points = [(40 + int(i / len(losses) * 800), 480 - int((v - 1.0) / 2.0 * 480)) for i, v in enumerate(losses)]
    for (x0, y0), (x1, y1) in zip(points[1:], points[2:]):
        mid = ((x0 + x1) // 2, (y0 + y1) // 2)
        assert tuple(pixels[mid[1], mid[0]]) == blue
    assert tuple(pixels[100, 700]) == white


# -- a whole workflow through the executor ---------------------------------------------------------------

def test_dataset_to_saved_lora_workflow(node_services):
    from graph.executor import Executor
    from graph.registry import NodeRegistry
    from graph.validation import validate_prompt
    from ldm.tiny import write_tiny_checkpoint
    from nodes import datasets, loaders

    write_tiny_checkpoint(node_services.folders.model_roots("checkpoints")[0] / "tiny.safetensors", "sd1",
                          dtype=torch.float32)
    folder = node_services.folders.input / "pets"
    folder.mkdir()
    for index in range(2):
        pixels = np.random.default_rng(index).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text(f"pet number {index}")
    registry = NodeRegistry()
    for module in (loaders, datasets, lt):
        assert registry.register_mappings(module.NODE_CLASS_MAPPINGS, module.NODE_DISPLAY_NAME_MAPPINGS,
                                          core=True) == {}
    train_inputs = dict(batch_size=2, grad_accumulation_steps=1, steps=3, learning_rate=0.001, rank=2,
                        optimizer="AdamW", loss_function="MSE", seed=1, training_dtype="fp32", lora_dtype="fp32",
                        quantized_backward=False, algorithm="LoRA", gradient_checkpointing=True,
                        checkpoint_depth=2, offloading=False, existing_lora="[None]", bucket_mode=False,
                        bypass_mode=False)
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny.safetensors"}},
        "2": {"class_type": "LoadImageTextDataSetFromFolder", "inputs": {"folder": "pets"}},
        "3": {"class_type": "MakeTrainingDataset",
              "inputs": {"images": ["2", 0], "vae": ["1", 2], "clip": ["1", 1], "texts": ["2", 1]}},
        "4": {"class_type": "TrainLoraNode",
              "inputs": {"model": ["1", 0], "latents": ["3", 0], "positive": ["3", 1], **train_inputs}},
        "5": {"class_type": "SaveLoRA", "inputs": {"lora": ["4", 0], "prefix": "loras/pets", "steps": ["4", 2]}},
        "6": {"class_type": "LossGraphNode", "inputs": {"loss": ["4", 1], "filename_prefix": "loss_graph"}},
    }
    result = validate_prompt(prompt, registry)
    assert result.ok, result.node_errors
    outcome = Executor(registry, services=node_services).execute("p", result.prompt, result.outputs)
    assert outcome.status == "success", outcome.messages
    saved, _ = load_state_dict(node_services.folders.output / "loras" / "pets_3_steps_00001_.safetensors")
    assert saved["diffusion_model.out.2.lora_down.weight"].shape[0] == 2
    assert outcome.outputs["6"]["images"][0]["type"] == "temp"
