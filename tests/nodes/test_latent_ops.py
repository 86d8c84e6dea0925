"""nodes.latent_ops / ldm.latent_ops: latent arithmetic, cuts, batches and LATENT_OPERATIONs.

Oracles are written out here independently: numpy/scipy math for the operations, plain index
arithmetic for cuts and batches.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from graph.executor import Executor
from graph.registry import NodeRegistry
from graph.validation import validate_prompt
from ldm import latent_ops as ops
from ldm.sampling.from_handle import model_sampling_of
from nodes import latent_ops, sampling
from tests.nodes.sampling_support import RecordingEngine, make_runner
from tests.nodes.sampling_support import one_torch_thread, sd1, tiny_sd1  # noqa: F401 (fixtures)
from tests.nodes.test_sampling import cond


def latent(*shape, seed=0, **extra):
    return {"samples": torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), **extra}


def test_registers_with_comfyui_signatures():
    registry = NodeRegistry()
    assert registry.register_mappings(latent_ops.NODE_CLASS_MAPPINGS, core=True) == {}
    info = registry.object_info()
    assert info["LatentMultiply"]["input"]["required"]["multiplier"] == (
        "FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01})
    assert info["LatentConcat"]["input"]["required"]["dim"][0] == ["x", "-x", "y", "-y", "t", "-t"]
    assert info["LatentCutToBatch"]["input"]["required"]["dim"][0] == ["t", "x", "y"]
    assert info["LatentBatchSeedBehavior"]["input"]["required"]["seed_behavior"] == (
        ["random", "fixed"], {"default": "fixed"})
    assert info["LatentOperationSharpen"]["output"] == ["LATENT_OPERATION"]
    assert list(info["LatentApplyOperationCFG"]["input"]["optional"]) == ["start_percent", "end_percent"]
    assert info["GetLatentSize"]["output_name"] == ["width", "height", "frames", "batch_size"]
    assert info["RebatchLatents"]["output_is_list"] == [True]
    assert info["RebatchLatents"]["category"] == "model/latent/batch"
    assert info["RebatchLatents"]["input_order"]["required"] == [
        "latents", "batch_size", "dimension", "overlap", "merge_overlap_mode"]
    rebatch = info["RebatchLatents"]["input"]["required"]
    assert rebatch["dimension"][0] == ["b", "t (video only)", "t (audio only)"]
    assert rebatch["merge_overlap_mode"][0] == ["truncate start", "truncate end", "fade smooth", "fade linear"]
    assert rebatch["overlap"][1]["advanced"] and rebatch["merge_overlap_mode"][1]["advanced"]
    assert info["BatchLatentsNode"]["input"]["required"] == {"latents.latent0": ("LATENT",)}
    assert len(info["BatchLatentsNode"]["input"]["optional"]) == 49
    assert info["LatentAdd"]["category"] == "model/latent/advanced"
    assert info["LatentBatch"]["deprecated"] is True


def test_add_subtract_multiply_resize_and_repeat_the_second():
    first, second = latent(2, 4, 4, 4, seed=1, batch_index=[5, 6]), latent(1, 4, 4, 4, seed=2)
    [added] = latent_ops.LatentAdd().run(first, second)
    [subtracted] = latent_ops.LatentSubtract().run(first, second)
    [scaled] = latent_ops.LatentMultiply().run(first, -2.5)
    torch.testing.assert_close(added["samples"], first["samples"] + second["samples"].repeat(2, 1, 1, 1))
    torch.testing.assert_close(subtracted["samples"], first["samples"] - second["samples"])
    torch.testing.assert_close(scaled["samples"], first["samples"] * -2.5)
    assert added["batch_index"] == [5, 6] and "batch_index" in first  # entries kept, input untouched
    # a different size is resized bilinearly to the first's
    small = latent(1, 4, 2, 2, seed=3)
    [resized] = latent_ops.LatentAdd().run(latent(1, 4, 4, 4, seed=4), small)
    expected = torch.nn.functional.interpolate(small["samples"], size=(4, 4), mode="bilinear")
    torch.testing.assert_close(resized["samples"] - latent(1, 4, 4, 4, seed=4)["samples"], expected)


def test_interpolate_mixes_directions_and_lengths():
    first, second = latent(1, 4, 3, 3, seed=1), latent(1, 4, 3, 3, seed=2)
    a, b = first["samples"].numpy(), second["samples"].numpy()
    ratio = 0.3
    la, lb = np.linalg.norm(a, axis=1, keepdims=True), np.linalg.norm(b, axis=1, keepdims=True)
    mixed = a / la * ratio + b / lb * (1 - ratio)
    expected = mixed / np.linalg.norm(mixed, axis=1, keepdims=True) * (la * ratio + lb * (1 - ratio))
    [out] = latent_ops.LatentInterpolate().run(first, second, ratio)
    np.testing.assert_allclose(out["samples"].numpy(), expected, rtol=1e-5, atol=1e-6)
    [at_one] = latent_ops.LatentInterpolate().run(first, second, 1.0)
    torch.testing.assert_close(at_one["samples"], first["samples"])
    zeros = {"samples": torch.zeros(1, 4, 3, 3)}
    [from_zero] = latent_ops.LatentInterpolate().run(zeros, second, 0.5)
    torch.testing.assert_close(from_zero["samples"], second["samples"] * 0.5)  # zero length, no NaN


def test_concat_and_cuts():
    first, second = latent(2, 4, 3, 5, seed=1), latent(1, 4, 3, 2, seed=2)
    [joined] = latent_ops.LatentConcat().run(first, second, "x")
    assert joined["samples"].shape == (2, 4, 3, 7)
    torch.testing.assert_close(joined["samples"][1, :, :, 5:], second["samples"][0])
    [before] = latent_ops.LatentConcat().run(first, latent(1, 4, 2, 5, seed=3), "-y")
    assert before["samples"].shape == (2, 4, 5, 5)
    torch.testing.assert_close(before["samples"][:, :, 2:], first["samples"])

    s = latent(1, 4, 6, 8, seed=4)
    [cut] = latent_ops.LatentCut().run(s, "x", 2, 3)
    torch.testing.assert_close(cut["samples"], s["samples"][..., 2:5])
    [tail] = latent_ops.LatentCut().run(s, "y", -2, 5)  # negative index counts from the end, clamped
    torch.testing.assert_close(tail["samples"], s["samples"][:, :, 4:6])
    [past] = latent_ops.LatentCut().run(s, "x", 100, 4)  # past the end: the last column
    torch.testing.assert_close(past["samples"], s["samples"][..., 7:8])


def test_cut_to_batch_moves_slices_into_the_batch():
    video = torch.arange(2 * 3 * 5 * 2 * 2, dtype=torch.float32).reshape(2, 3, 5, 2, 2)
    out = ops.cut_to_batch(video, "t", 2)  # 5 frames → 2 slices of 2, the fifth dropped
    assert out.shape == (4, 3, 2, 2, 2)
    torch.testing.assert_close(out[1], video[0, :, 2:4])
    torch.testing.assert_close(out[2], video[1, :, 0:2])
    image = torch.randn(1, 4, 4, 6)
    assert ops.cut_to_batch(image, "t", 1) is image  # "t" names the channels of an image latent
    assert ops.cut_to_batch(image, "x", 3).shape == (2, 4, 4, 3)


def test_batch_and_seed_behavior():
    first = latent(2, 4, 4, 4, seed=1)
    second = latent(1, 4, 2, 2, seed=2, batch_index=[7])
    [batched] = latent_ops.LatentBatch().run(first, second)
    assert batched["samples"].shape == (3, 4, 4, 4) and batched["batch_index"] == [0, 1, 7]
    [fixed] = latent_ops.LatentBatchSeedBehavior().run(batched, "fixed")
    assert fixed["batch_index"] == [0, 0, 0]
    [random] = latent_ops.LatentBatchSeedBehavior().run(batched, "random")
    assert "batch_index" not in random and "batch_index" in batched


def test_batch_latents_node_through_the_executor():
    registry = NodeRegistry()
    assert registry.register_mappings(latent_ops.NODE_CLASS_MAPPINGS, core=True) == {}
    from nodes import latent, utils
    registry.register_mappings(latent.NODE_CLASS_MAPPINGS, core=True)
    registry.register_mappings(utils.NODE_CLASS_MAPPINGS, core=True)
    prompt = {
        "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 2}},
        "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 32, "height": 32, "batch_size": 3}},
        "3": {"class_type": "BatchLatentsNode", "inputs": {"latents.latent1": ["2", 0], "latents.latent0": ["1", 0]}},
        "4": {"class_type": "GetLatentSize", "inputs": {"latent": ["3", 0]}},
        "5": {"class_type": "PreviewAny", "inputs": {"source": ["4", 3]}},
        "6": {"class_type": "PreviewAny", "inputs": {"source": ["4", 0]}},
    }
    result = validate_prompt(prompt, registry)
    assert result.ok, result.node_errors
    outcome = Executor(registry).execute("p", result.prompt, result.outputs)
    assert outcome.status == "success", outcome.messages
    assert outcome.outputs["5"]["text"] == ["5"]  # 2 + 3 latents, in template order
    assert outcome.outputs["6"]["text"] == ["8"]  # resized to the first's 8x8
    missing = validate_prompt({"3": {"class_type": "BatchLatentsNode", "inputs": {}}}, registry)
    assert not missing.ok


def test_get_latent_size_of_image_and_video_latents():
    assert latent_ops.GetLatentSize().run({"samples": torch.zeros(3, 4, 5, 7)}) == (7, 5, 1, 3)
    assert latent_ops.GetLatentSize().run({"samples": torch.zeros(2, 16, 9, 5, 7)}) == (7, 5, 9, 2)


def test_tonemap_reinhard_matches_the_formula():
    x = latent(2, 4, 5, 5, seed=6)["samples"] * 3
    [operation] = latent_ops.LatentOperationTonemapReinhard().make(0.8)
    a = x.numpy().astype(np.float64)
    length = np.linalg.norm(a, axis=1, keepdims=True) + 1e-10
    top = (length.std(axis=(1, 2, 3), ddof=1, keepdims=True) * 5 + length.mean(axis=(1, 2, 3), keepdims=True)) * 0.8
    expected = a / length * (length / top / (length / top + 1) * top)
    np.testing.assert_allclose(operation(latent=x).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_sharpen_matches_a_mirrored_correlation():
    x = latent(1, 4, 12, 12, seed=7)["samples"]
    radius, sigma, alpha = 2, 1.0, 0.3
    [operation] = latent_ops.LatentOperationSharpen().make(radius, sigma, alpha)
    a = x.numpy().astype(np.float64)
    length = np.linalg.norm(a, axis=1, keepdims=True) + 1e-6
    axis = np.linspace(-1, 1, 2 * radius + 1)
    gauss = np.exp(-(axis[None, :] ** 2 + axis[:, None] ** 2) / (2 * sigma ** 2))
    kernel = gauss / gauss.sum() * -(alpha * 10)
    kernel[radius, radius] += 1.0 - kernel.sum()
    expected = np.stack([ndimage.correlate(a[0, c] / length[0, 0], kernel, mode="mirror") for c in range(4)])
    np.testing.assert_allclose(operation(latent=x).numpy()[0], expected * length[0], rtol=1e-4, atol=1e-5)
    [identity] = latent_ops.LatentOperationSharpen().make(radius, sigma, 0.0)
    torch.testing.assert_close(identity(latent=x), x, rtol=1e-5, atol=1e-5)


def test_blend_operation_and_apply():
    reference = latent(1, 4, 2, 2, seed=8)
    target = latent(2, 4, 4, 4, seed=9)
    [blend] = latent_ops.LatentOperationBlend().make(reference, 0.25)
    [applied] = latent_ops.LatentApplyOperation().run(target, blend)
    nearest = reference["samples"].repeat_interleave(2, -1).repeat_interleave(2, -2)
    torch.testing.assert_close(applied["samples"], target["samples"] * 0.75 + nearest * 0.25)
    [none] = latent_ops.LatentOperationBlend().make(reference, 0.0)
    assert none(latent=target["samples"]) is target["samples"]


def test_apply_operation_cfg_hooks_the_guidance_inside_its_range(sd1):
    model, _, _ = sd1
    calls = []

    def double(latent, **kwargs):
        calls.append(latent.clone())
        return latent * 2

    [patched] = latent_ops.LatentApplyOperationCFG().patch(model, double, 0.2, 0.6)
    assert model.hooks.pre_cfg_functions == [] and len(patched.hooks.pre_cfg_functions) == 1
    hook = patched.hooks.pre_cfg_functions[0]
    sampling = model_sampling_of(model)
    start, end = sampling.percent_to_sigma(0.2), sampling.percent_to_sigma(0.6)
    cond, uncond = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    inside = torch.tensor([(start + end) / 2])
    out = hook({"conds_out": [cond, uncond], "sigma": inside})
    torch.testing.assert_close(out[0], (cond - uncond) * 2 + uncond)
    torch.testing.assert_close(out[1], uncond)
    for outside in (start * 1.01, end * 0.99):
        out = hook({"conds_out": [cond, uncond], "sigma": torch.tensor([outside])})
        assert out[0] is cond
    only_cond = hook({"conds_out": [cond, None], "sigma": inside})  # cfg 1: no uncond evaluated
    torch.testing.assert_close(only_cond[0], cond * 2)
    assert len(calls) == 2


def test_rebatch_regroups_and_keeps_indices_and_masks():
    mask = torch.zeros(1, 1, 16, 16)
    latents = [latent(3, 4, 2, 2, seed=1), latent(2, 4, 2, 2, seed=2, noise_mask=mask), latent(2, 4, 3, 3, seed=3)]
    [out] = latent_ops.RebatchLatents().rebatch(latents, [2], ["b"], [0], ["truncate start"])
    assert [o["samples"].shape[0] for o in out] == [2, 2, 1, 2]
    assert [o["batch_index"] for o in out] == [[0, 1], [2, 3], [4], [5, 6]]
    joined = torch.cat([latents[0]["samples"], latents[1]["samples"]])
    torch.testing.assert_close(torch.cat([o["samples"] for o in out[:3]]), joined)
    assert "noise_mask" not in out[0]  # all ones: no mask
    torch.testing.assert_close(out[1]["noise_mask"][1], torch.zeros(1, 2, 2))  # the masked latent's, latent size
    torch.testing.assert_close(out[1]["noise_mask"][0], torch.ones(1, 2, 2))  # unmasked: all ones
    assert out[3]["samples"].shape[-1] == 3 and "noise_mask" not in out[3]


def test_rebatch_overlap_repeats_and_reconciles_entries():
    frames = [{"samples": torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1) + start}
              for n, start in ((3, 0), (3, 10))]
    values = lambda out: [o["samples"].flatten().tolist() for o in out]  # noqa: E731
    # consecutive outputs repeat two entries
    six = [{"samples": torch.arange(6, dtype=torch.float32).reshape(6, 1, 1, 1)}]
    [out] = latent_ops.RebatchLatents().rebatch(six, [4], ["b"], [2], ["truncate start"])
    assert values(out) == [[0, 1, 2, 3], [2, 3, 4, 5]]
    assert [o["batch_index"] for o in out] == [[0, 1, 2, 3], [2, 3, 4, 5]]
    # consecutive inputs are taken to share two entries: "truncate start" keeps the first input's copy
    [start] = latent_ops.RebatchLatents().rebatch(frames, [10], ["b"], [2], ["truncate start"])
    assert values(start) == [[0, 1, 2, 12]] and start[0]["batch_index"] == [0, 1, 2, 5]
    [late] = latent_ops.RebatchLatents().rebatch(frames, [10], ["b"], [2], ["truncate end"])
    assert values(late) == [[0, 10, 11, 12]] and late[0]["batch_index"] == [0, 3, 4, 5]
    [fade] = latent_ops.RebatchLatents().rebatch(frames, [10], ["b"], [2], ["fade linear"])
    assert values(fade) == [[0, 1, 11, 12]]  # weights 0 then 1 across the two shared entries
    [smooth] = latent_ops.RebatchLatents().rebatch(frames, [10], ["b"], [3], ["fade smooth"])
    assert values(smooth) == [[0, 6, 12]]  # smoothstep(0.5) = 0.5 halfway
    with pytest.raises(ValueError, match="smaller than the batch size"):
        latent_ops.RebatchLatents().rebatch(frames, [2], ["b"], [2], ["truncate start"])


def test_rebatch_along_the_last_axis_and_refuses_video_time_for_images():
    wide = latent(1, 4, 2, 5, seed=4)
    mask = torch.zeros(1, 16, 40)
    mask[..., 24:] = 1.0
    [out] = latent_ops.RebatchLatents().rebatch([{**wide, "noise_mask": mask}], [2], ["t (audio only)"], [0],
                                                ["truncate start"])
    assert [o["samples"].shape[-1] for o in out] == [2, 2, 1]
    torch.testing.assert_close(torch.cat([o["samples"] for o in out], dim=-1), wide["samples"])
    assert all("batch_index" not in o for o in out)  # the batch itself is not regrouped
    assert out[0]["noise_mask"].shape == (1, 1, 2, 2) and "noise_mask" not in out[2]  # last column: all ones
    with pytest.raises(ValueError, match="video time dimension"):
        latent_ops.RebatchLatents().rebatch([wide], [2], ["t (video only)"], [0], ["truncate start"])
    video = {"samples": torch.randn(1, 4, 5, 2, 2)}
    [clips] = latent_ops.RebatchLatents().rebatch([video], [2], ["t (video only)"], [1], ["truncate start"])
    assert [c["samples"].shape[2] for c in clips] == [2, 2, 2, 2]
    torch.testing.assert_close(clips[1]["samples"], video["samples"][:, :, 1:3])


def test_ksampler_runs_the_cfg_operation_on_every_step_in_range(tmp_path, sd1):
    model, _, _ = sd1
    guidance_seen = []

    def record(latent, **kwargs):
        guidance_seen.append(latent.clone())
        return latent

    run = make_runner(tmp_path, RecordingEngine())
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    [everywhere] = latent_ops.LatentApplyOperationCFG().patch(model, record)
    run(sampling.KSampler().sample, everywhere, 1, 3, 5.0, "euler", "normal", cond(), cond(0.0), latent)
    assert len(guidance_seen) == 3
    guidance_seen.clear()
    [late] = latent_ops.LatentApplyOperationCFG().patch(model, record, 0.5, 1.0)
    run(sampling.KSampler().sample, late, 1, 4, 5.0, "euler", "normal", cond(), cond(0.0), latent)
    assert 0 < len(guidance_seen) < 4  # only the steps whose sigma is in the later half
