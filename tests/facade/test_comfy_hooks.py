"""``comfy.hooks``: a pack's LoRA hook set on conditioning samples as Weft's hook nodes do, and
ComfyUI's hook objects translate onto Weft's weight hooks."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch

from ldm.sampling import weight_hooks as wh


def lora_weights() -> dict[str, torch.Tensor]:
    """A rank-2 LoRA on cross-attention projections of the tiny SD1 UNet."""
    g = torch.Generator().manual_seed(7)
    out = {}
    for block in ("input_blocks_1_1", "input_blocks_2_1", "output_blocks_3_1", "output_blocks_4_1"):
        for proj in ("to_k", "to_v"):
            name = f"lora_unet_{block}_transformer_blocks_0_attn2_{proj}"
            out[f"{name}.lora_up.weight"] = torch.randn(32, 2, generator=g) * 0.5
            out[f"{name}.lora_down.weight"] = torch.randn(2, 32, generator=g) * 0.5
    return out


@pytest.fixture
def studio(pack_studio):
    reports = pack_studio.load("sampler_pack.py", "hooks_pack.py")
    assert all(report.loaded for report in reports), [report.error for report in reports]
    folder = pack_studio.services.folders.model_roots("loras")[0]
    safetensors.torch.save_file(lora_weights(), folder / "hook.safetensors")
    return pack_studio


def prompt(hooked: dict) -> dict:
    """Text, hooks (``hooked``: nodes "10"… giving the hooked positive / negative at "20"), sampling."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny_sd1.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red square", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        **hooked,
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["20", 0], "negative": ["20", 1], "latent_image": ["4", 0],
            "seed": 3, "steps": 6, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "6": {"class_type": "LatentStash", "inputs": {"samples": ["5", 0], "key": "out"}},
    }


def pack_hooked(off_at: float) -> dict:
    return {"20": {"class_type": "PackHookedLora", "inputs": {
        "positive": ["2", 0], "negative": ["3", 0], "lora_name": "hook.safetensors", "strength_model": 0.8,
        "off_at": off_at}}}


def weft_hooked(off_at: float | None) -> dict:
    nodes = {"10": {"class_type": "CreateHookLoraModelOnly",
                    "inputs": {"lora_name": "hook.safetensors", "strength_model": 0.8}}}
    hooks = ["10", 0]
    if off_at is not None:
        nodes["11"] = {"class_type": "CreateHookKeyframe", "inputs": {"strength_mult": 1.0, "start_percent": 0.0}}
        nodes["12"] = {"class_type": "CreateHookKeyframe",
                       "inputs": {"strength_mult": 0.0, "start_percent": off_at, "prev_hook_kf": ["11", 0]}}
        nodes["13"] = {"class_type": "SetHookKeyframes", "inputs": {"hooks": ["10", 0], "hook_kf": ["12", 0]}}
        hooks = ["13", 0]
    nodes["20"] = {"class_type": "PairConditioningSetProperties", "inputs": {
        "positive_NEW": ["2", 0], "negative_NEW": ["3", 0], "strength": 1.0, "set_cond_area": "default",
        "hooks": hooks}}
    return nodes


def sampled(studio, graph: dict) -> torch.Tensor:
    studio.run(prompt(graph))
    return studio.registry.get("LatentStash").node_class.seen["out"]


def test_pack_lora_hook_samples_as_weft_hook_nodes(studio):
    hooked = sampled(studio, pack_hooked(1.0))
    assert torch.equal(hooked, sampled(studio, weft_hooked(None)))
    plain = sampled(studio, {"20": {"class_type": "PairConditioningCombine", "inputs": {
        "positive_A": ["2", 0], "negative_A": ["3", 0], "positive_B": ["2", 0], "negative_B": ["3", 0]}}})
    assert (hooked - plain).abs().max() > 1e-3
    # Keyframes built ComfyUI's way (added out of order, then set on the group) are Weft's keyframes.
    scheduled = sampled(studio, pack_hooked(0.5))
    assert torch.equal(scheduled, sampled(studio, weft_hooked(0.5)))
    assert (scheduled - hooked).abs().max() > 1e-4


def test_hook_objects_translate_onto_weft_hooks(pack_studio):
    import comfy.hooks as ch

    group = ch.create_hook_lora({"k": torch.ones(1)}, 0.8, 0.3)
    [hook] = group.get_type(ch.EnumHookType.Weight)
    assert (hook.weights["k"].item(), hook.need_weight_init, hook._strength_model, hook._strength_clip) == (
        1.0, True, 0.8, 0.3)
    keyframes = ch.HookKeyframeGroup()
    keyframes.add(ch.HookKeyframe(0.5, 0.6, guarantee_steps=0))
    keyframes.add(ch.HookKeyframe(2.0, 0.1))
    group.set_keyframes_on_hooks(keyframes)
    assert hook.strength_model == pytest.approx(1.6)  # at rest: the first keyframe's strength
    weft = group.as_weft()
    [translated] = weft.hooks
    assert (translated.strength_model, translated.strength_clip, translated.ref) == (0.8, 0.3, hook.hook_ref)
    assert translated.keyframes == wh.HookKeyframes((wh.HookKeyframe(2.0, 0.1, 1), wh.HookKeyframe(0.5, 0.6, 0)))
    assert group.clone().as_weft() == weft  # clones share the ref: the same Weft hook

    # Conditioning gets Weft's group; appending combines with the hooks an entry already has.
    other = ch.create_hook_lora({}, 1.0, 1.0)
    cond = [[torch.zeros(1, 2, 4), {"strength": 0.5}]]
    once = ch.set_hooks_for_conditioning(cond, group)
    assert once[0][1] == {"strength": 0.5, "hooks": weft} and cond[0][1] == {"strength": 0.5}
    twice = ch.set_hooks_for_conditioning(once, other)
    assert twice[0][1]["hooks"] == weft.combine(other.as_weft())
    assert ch.set_hooks_for_conditioning(once, other, append_hooks=False)[0][1]["hooks"] == other.as_weft()
    assert ch.set_hooks_for_conditioning(once, weft)[0][1]["hooks"] == weft  # Weft's own HOOKS value too
    mask = torch.ones(8, 8)
    [[_, props]] = ch.set_conds_props([cond], 0.7, "mask bounds", mask=mask, hooks=group,
                                      timesteps_range=(0.2, 0.9))[0]
    assert props["hooks"] == weft and props["mask_strength"] == 0.7 and props["set_area_to_bounds"]
    assert props["mask"].shape == (1, 8, 8) and (props["start_percent"], props["end_percent"]) == (0.2, 0.9)
    [combined] = ch.set_default_conds_and_combine([cond], [cond], hooks=group)
    assert combined[0][1] == cond[0][1] and combined[1][1] == {"strength": 0.5, "hooks": weft, "default": True}

    assert ch.HookGroup.combine_all_hooks([None, group]) is group
    assert ch.HookGroup.combine_all_hooks([group, other]).as_weft() == weft.combine(other.as_weft())
    torch.testing.assert_close(ch.InterpolationMethod.get_weights(0.0, 1.0, 3, ch.InterpolationMethod.EASE_IN),
                               torch.tensor([0.0, 0.25, 1.0]))


def test_model_as_lora_hook_uses_weft_keys(pack_studio, tiny_sd1):
    import comfy.hooks as ch
    import comfy.sd

    model, clip, _, _ = comfy.sd.load_checkpoint_guess_config(str(tiny_sd1))
    clip_weights = {f"clip_l.transformer.{k.partition('.')[2]}": v for k, v in clip.encoders.state_dict().items()}
    group = ch.create_hook_model_as_lora(ch.get_patch_weights_from_model(model), clip_weights, 1.0, 0.5)
    [translated] = group.as_weft().hooks
    unet = model.unet.state_dict()
    assert translated.unet_weights.keys() == unet.keys()
    assert all(torch.equal(translated.unet_weights[k], unet[k]) for k in unet)
    assert translated.clip_weights.keys() == clip.encoders.state_dict().keys()
    group.hooks[0].weights = {"diffusion_model.out.2.bias": ("diff", (torch.ones(4),))}
    with pytest.raises(NotImplementedError, match="already-loaded patches"):
        group.as_weft()


def test_hook_kinds_weft_lacks_raise(pack_studio):
    import comfy.hooks as ch

    assert issubclass(ch.TransformerOptionsHook, ch.Hook) and ch.WrapperHook is ch.TransformerOptionsHook
    with pytest.raises(NotImplementedError, match=r"not in Weft \(ComfyUI's comfy\.hooks\.ObjectPatchHook\)"):
        ch.ObjectPatchHook()
    with pytest.raises(NotImplementedError, match=r"comfy\.hooks\.load_hook_lora_for_models\)"):
        ch.load_hook_lora_for_models(None, None, {}, 1.0, 1.0)
