"""nodes.hooks: ComfyUI's hook nodes on the tiny SD1 checkpoint — hooked LoRAs against LoRAs loaded
on the model, keyframes against the same schedule run by hand, CLIP hooks, and the property nodes'
conditioning dicts."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch

from graph.registry import NodeRegistry
from ldm.sampling.from_handle import model_sampling_of
from ldm.sampling.sample import ksampler_sigmas
from ldm.sampling.weight_hooks import HookGroup, lora_hook
from ldm.tiny import write_tiny_checkpoint
from nodes import conditioning as cn
from nodes import hooks
from nodes.loaders import CheckpointLoaderSimple
from nodes.sampling import KSampler, KSamplerAdvanced
from tests.nodes.sampling_support import make_runner
from tests.nodes.sampling_support import one_torch_thread, sd1, tiny_sd1  # noqa: F401 (fixtures)

#: ComfyUI's comfy_extras/nodes_hooks.py: (display name, category, required, optional, outputs, output names).
HOOK_STRENGTH = {"default": 1.0, "min": -20.0, "max": 20.0, "step": 0.01}
PROPS = {"strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}),
         "set_cond_area": (["default", "mask bounds"],)}
PROPS_OPTIONAL = {"mask": ("MASK",), "hooks": ("HOOKS",), "timesteps": ("TIMESTEPS_RANGE",)}
PERCENT0 = ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001})
PERCENT1 = ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001})
C = ("CONDITIONING",)
PAIR = (["CONDITIONING", "CONDITIONING"], ["positive", "negative"])
COMFY = {
    "CreateHookLora": ("Create Hook LoRA", "advanced/hooks/create",
                       {"lora_name": None, "strength_model": ("FLOAT", HOOK_STRENGTH),
                        "strength_clip": ("FLOAT", HOOK_STRENGTH)}, {"prev_hooks": ("HOOKS",)}, (["HOOKS"], ["HOOKS"])),
    "CreateHookLoraModelOnly": ("Create Hook LoRA (MO)", "advanced/hooks/create",
                                {"lora_name": None, "strength_model": ("FLOAT", HOOK_STRENGTH)},
                                {"prev_hooks": ("HOOKS",)}, (["HOOKS"], ["HOOKS"])),
    "CreateHookModelAsLora": ("Create Hook Model as LoRA", "advanced/hooks/create",
                              {"ckpt_name": None, "strength_model": ("FLOAT", HOOK_STRENGTH),
                               "strength_clip": ("FLOAT", HOOK_STRENGTH)}, {"prev_hooks": ("HOOKS",)},
                              (["HOOKS"], ["HOOKS"])),
    "CreateHookModelAsLoraModelOnly": ("Create Hook Model as LoRA (MO)", "advanced/hooks/create",
                                       {"ckpt_name": None, "strength_model": ("FLOAT", HOOK_STRENGTH)},
                                       {"prev_hooks": ("HOOKS",)}, (["HOOKS"], ["HOOKS"])),
    "SetHookKeyframes": ("Set Hook Keyframes", "advanced/hooks/scheduling", {"hooks": ("HOOKS",)},
                         {"hook_kf": ("HOOK_KEYFRAMES",)}, (["HOOKS"], ["HOOKS"])),
    "CreateHookKeyframe": ("Create Hook Keyframe", "advanced/hooks/scheduling",
                           {"strength_mult": ("FLOAT", HOOK_STRENGTH), "start_percent": PERCENT0},
                           {"prev_hook_kf": ("HOOK_KEYFRAMES",)}, (["HOOK_KEYFRAMES"], ["HOOK_KF"])),
    "CreateHookKeyframesInterpolated": (
        "Create Hook Keyframes Interp.", "advanced/hooks/scheduling",
        {"strength_start": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.001}),
         "strength_end": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.001}),
         "interpolation": (["linear", "ease_in", "ease_out", "ease_in_out"],),
         "start_percent": PERCENT0, "end_percent": PERCENT1,
         "keyframes_count": ("INT", {"default": 5, "min": 2, "max": 100, "step": 1}),
         "print_keyframes": ("BOOLEAN", {"default": False})},
        {"prev_hook_kf": ("HOOK_KEYFRAMES",)}, (["HOOK_KEYFRAMES"], ["HOOK_KF"])),
    "CreateHookKeyframesFromFloats": (
        "Create Hook Keyframes From Floats", "advanced/hooks/scheduling",
        {"floats_strength": ("FLOATS", {"default": -1, "min": -1, "step": 0.001, "forceInput": True}),
         "start_percent": PERCENT0, "end_percent": PERCENT1, "print_keyframes": ("BOOLEAN", {"default": False})},
        {"prev_hook_kf": ("HOOK_KEYFRAMES",)}, (["HOOK_KEYFRAMES"], ["HOOK_KF"])),
    "CombineHooks2": ("Combine Hooks [2]", "advanced/hooks/combine", {},
                      {f"hooks_{x}": ("HOOKS",) for x in "AB"}, (["HOOKS"], ["HOOKS"])),
    "CombineHooks4": ("Combine Hooks [4]", "advanced/hooks/combine", {},
                      {f"hooks_{x}": ("HOOKS",) for x in "ABCD"}, (["HOOKS"], ["HOOKS"])),
    "CombineHooks8": ("Combine Hooks [8]", "advanced/hooks/combine", {},
                      {f"hooks_{x}": ("HOOKS",) for x in "ABCDEFGH"}, (["HOOKS"], ["HOOKS"])),
    "ConditioningSetProperties": ("Cond Set Props", "advanced/hooks/cond single", {"cond_NEW": C, **PROPS},
                                  PROPS_OPTIONAL, (["CONDITIONING"], ["CONDITIONING"])),
    "ConditioningSetPropertiesAndCombine": ("Cond Set Props Combine", "advanced/hooks/cond single",
                                            {"cond": C, "cond_NEW": C, **PROPS}, PROPS_OPTIONAL,
                                            (["CONDITIONING"], ["CONDITIONING"])),
    "PairConditioningSetProperties": ("Cond Pair Set Props", "advanced/hooks/cond pair",
                                      {"positive_NEW": C, "negative_NEW": C, **PROPS}, PROPS_OPTIONAL, PAIR),
    "PairConditioningSetPropertiesAndCombine": (
        "Cond Pair Set Props Combine", "advanced/hooks/cond pair",
        {"positive": C, "negative": C, "positive_NEW": C, "negative_NEW": C, **PROPS}, PROPS_OPTIONAL, PAIR),
    "ConditioningSetDefaultCombine": ("Cond Set Default Combine", "advanced/hooks/cond single",
                                      {"cond": C, "cond_DEFAULT": C}, {"hooks": ("HOOKS",)},
                                      (["CONDITIONING"], ["CONDITIONING"])),
    "PairConditioningSetDefaultCombine": ("Cond Pair Set Default Combine", "advanced/hooks/cond pair",
                                          {"positive": C, "negative": C, "positive_DEFAULT": C,
                                           "negative_DEFAULT": C}, {"hooks": ("HOOKS",)}, PAIR),
    "PairConditioningCombine": ("Cond Pair Combine", "advanced/hooks/cond pair",
                                {"positive_A": C, "negative_A": C, "positive_B": C, "negative_B": C}, {}, PAIR),
    "SetClipHooks": ("Set CLIP Hooks", "advanced/hooks/clip",
                     {"clip": ("CLIP",), "apply_to_conds": ("BOOLEAN", {"default": True}),
                      "schedule_clip": ("BOOLEAN", {"default": False})}, {"hooks": ("HOOKS",)}, (["CLIP"], ["CLIP"])),
}


def test_schema_is_comfyuis():
    registry = NodeRegistry()
    assert registry.register_mappings(hooks.NODE_CLASS_MAPPINGS, hooks.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    assert set(hooks.NODE_CLASS_MAPPINGS) == set(COMFY)
    for name, (display, category, required, optional, (outputs, output_names)) in COMFY.items():
        info = registry.node_info(name)
        assert (info["display_name"], info["category"], info["experimental"]) == (display, category, True), name
        declared = hooks.NODE_CLASS_MAPPINGS[name].INPUT_TYPES()
        assert list(declared["required"]) == list(required), name
        for key, spec in required.items():
            if spec is not None:  # file combos are listed from the folders
                assert tuple(declared["required"][key]) == spec, (name, key)
        assert declared.get("optional", {}) == optional, name
        assert (list(info["output"]), list(info["output_name"])) == (outputs, output_names), name


@pytest.fixture
def run(tmp_path):
    return make_runner(tmp_path)


def lora_weights(seed: int = 7) -> dict[str, torch.Tensor]:
    """A rank-2 LoRA on every cross-attention projection of the tiny SD1 UNet and one CLIP MLP."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    blocks = ["input_blocks_1_1", "input_blocks_2_1", "output_blocks_3_1", "output_blocks_4_1", "output_blocks_5_1"]
    for block in blocks:
        for proj in ("to_k", "to_v"):
            name = f"lora_unet_{block}_transformer_blocks_0_attn2_{proj}"
            out[f"{name}.lora_up.weight"] = torch.randn(32, 2, generator=g) * 0.5
            out[f"{name}.lora_down.weight"] = torch.randn(2, 32, generator=g) * 0.5
    out["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight"] = torch.randn(128, 2, generator=g)
    out["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"] = torch.randn(2, 32, generator=g)
    return out


@pytest.fixture
def lora_name(run):
    safetensors.torch.save_file(lora_weights(), run.services.folders.model_roots("loras")[0] / "hook.safetensors")
    return "hook.safetensors"


def encode(run, clip, text):
    return run(cn.CLIPTextEncode().encode, clip, text)[0]


def sample(run, model, positive, negative, cfg=4.0, steps=6, seed=3):
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    return run(KSampler().sample, model, seed, steps, cfg, "euler", "normal", positive, negative, latent, 1.0)[0]


def both_hooked(run, positive, negative, hook_group):
    return run(hooks.PairConditioningSetProperties().set_properties, positive, negative, 1.0, "default",
               hooks=hook_group)


def test_hooked_lora_equals_the_lora_loaded_on_the_model(run, sd1, lora_name):
    model, clip, _ = sd1
    before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    positive, negative = encode(run, clip, "a red cube"), encode(run, clip, "")
    [hook_group] = run(hooks.CreateHookLoraModelOnly().create_hook_model_only, lora_name, 0.8)
    hooked = sample(run, model, *both_hooked(run, positive, negative, hook_group))
    # The hooks' patches are gone after the run: the weights are bit-identical to before.
    assert all(torch.equal(before[k], v) for k, v in model.unet.state_dict().items())
    [lora_model] = run(cn.LoraLoaderModelOnly().load_lora_model_only, model, lora_name, 0.8)
    loaded = sample(run, lora_model, positive, negative)
    plain = sample(run, model, positive, negative)
    torch.testing.assert_close(hooked["samples"], loaded["samples"], rtol=1e-5, atol=1e-5)
    assert (hooked["samples"] - plain["samples"]).abs().max() > 1e-2
    # cfg 1 runs the positive only: hooking it alone is the whole LoRA.
    [pos_hooked] = run(hooks.ConditioningSetProperties().set_properties, positive, 1.0, "default", hooks=hook_group)
    torch.testing.assert_close(sample(run, model, pos_hooked, negative, cfg=1.0)["samples"],
                               sample(run, lora_model, positive, negative, cfg=1.0)["samples"], rtol=1e-5, atol=1e-5)


def test_keyframes_equal_the_lora_then_no_lora_schedule_by_hand(run, sd1, lora_name):
    model, clip, _ = sd1
    positive, negative = encode(run, clip, "a red cube"), encode(run, clip, "")
    [kf] = run(hooks.CreateHookKeyframe().create_hook_keyframe, 1.0, 0.0)
    [kf] = run(hooks.CreateHookKeyframe().create_hook_keyframe, 0.0, 0.5, prev_hook_kf=kf)
    [hook_group] = run(hooks.CreateHookLora().create_hook, lora_name, 1.0, 1.0)
    [scheduled_group] = run(hooks.SetHookKeyframes().set_hook_keyframes, hook_group, kf)
    scheduled = sample(run, model, *both_hooked(run, positive, negative, scheduled_group), steps=8)

    sampling = model_sampling_of(model)
    sigmas = ksampler_sigmas(sampling, "normal", "euler", 8)
    switch = next(i for i, s in enumerate(sigmas) if bool(sampling.percent_to_sigma(0.5) >= s))
    assert 0 < switch < 8
    [lora_model] = run(cn.LoraLoaderModelOnly().load_lora_model_only, model, lora_name, 1.0)
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    [first] = run(KSamplerAdvanced().sample, lora_model, "enable", 3, 8, 4.0, "euler", "normal", positive, negative,
                  latent, 0, switch, "enable")
    [by_hand] = run(KSamplerAdvanced().sample, model, "disable", 3, 8, 4.0, "euler", "normal", positive, negative,
                    first, switch, 10000, "disable")
    torch.testing.assert_close(scheduled["samples"], by_hand["samples"], rtol=1e-5, atol=1e-5)
    whole_lora = sample(run, lora_model, positive, negative, steps=8)
    plain = sample(run, model, positive, negative, steps=8)
    for other in (whole_lora, plain):
        assert (scheduled["samples"] - other["samples"]).abs().max() > 1e-3


def test_clip_hooks_change_the_encoding_only_where_set(run, sd1, lora_name):
    _, clip, _ = sd1
    plain = encode(run, clip, "a red cube")
    [hook_group] = run(hooks.CreateHookLora().create_hook, lora_name, 1.0, 0.6)
    [hooked_clip] = run(hooks.SetClipHooks().apply_hooks, clip, schedule_clip=False, apply_to_conds=True,
                        hooks=hook_group)
    [[cond, extras]] = encode(run, hooked_clip, "a red cube")
    [_, lora_clip] = run(cn.LoraLoader().load_lora, None, clip, lora_name, 0.0, 0.6)
    [[lora_cond, _]] = encode(run, lora_clip, "a red cube")
    assert torch.equal(cond, lora_cond) and not torch.allclose(cond, plain[0][0], atol=1e-4)
    assert extras["hooks"] is hook_group
    assert torch.equal(encode(run, clip, "a red cube")[0][0], plain[0][0])  # the input CLIP is untouched
    [unattached] = run(hooks.SetClipHooks().apply_hooks, clip, schedule_clip=False, apply_to_conds=False,
                       hooks=hook_group)
    assert "hooks" not in encode(run, unattached, "a red cube")[0][1]
    # Without hooks the CLIP comes back as it is.
    assert run(hooks.SetClipHooks().apply_hooks, clip, schedule_clip=False, apply_to_conds=True)[0] is clip


def test_scheduled_clip_hooks_encode_once_per_keyframe_range(run, sd1, lora_name):
    _, clip, _ = sd1
    [kf] = run(hooks.CreateHookKeyframesFromFloats().create_hook_keyframes, [1.0, 0.0], 0.0, 0.5)
    [hook_group] = run(hooks.CreateHookLora().create_hook, lora_name, 1.0, 1.0)
    [hook_group] = run(hooks.SetHookKeyframes().set_hook_keyframes, hook_group, kf)
    [scheduled_clip] = run(hooks.SetClipHooks().apply_hooks, clip, schedule_clip=True, apply_to_conds=True,
                           hooks=hook_group)
    entries = encode(run, scheduled_clip, "a red cube")
    assert [(e[1]["clip_start_percent"], e[1]["clip_end_percent"]) for e in entries] == [(0.0, 0.5), (0.5, 1.0)]
    [_, lora_clip] = run(cn.LoraLoader().load_lora, None, clip, lora_name, 0.0, 1.0)
    assert torch.equal(entries[0][0], encode(run, lora_clip, "a red cube")[0][0])
    assert torch.equal(entries[1][0], encode(run, clip, "a red cube")[0][0])
    # Not scheduled: keyframes are ignored and the LoRA applies at full strength.
    [unscheduled] = run(hooks.SetClipHooks().apply_hooks, clip, schedule_clip=False, apply_to_conds=True,
                        hooks=hook_group)
    assert torch.equal(encode(run, unscheduled, "a red cube")[0][0], entries[0][0])


def test_model_as_lora_at_strength_one_samples_like_the_other_checkpoint(run, sd1):
    model, clip, _ = sd1
    folder = run.services.folders.model_roots("checkpoints")[0]
    write_tiny_checkpoint(folder / "other.safetensors", "sd1", seed=1)
    [other_model, other_clip, _] = run(CheckpointLoaderSimple().load_checkpoint, "other.safetensors")
    [hook_group] = run(hooks.CreateHookModelAsLora().create_hook, "other.safetensors", 1.0, 1.0)
    [hooked_clip] = run(hooks.SetClipHooks().apply_hooks, clip, schedule_clip=False, apply_to_conds=True,
                        hooks=hook_group)
    positive, negative = encode(run, hooked_clip, "a red cube"), encode(run, hooked_clip, "")
    torch.testing.assert_close(positive[0][0], encode(run, other_clip, "a red cube")[0][0], rtol=1e-5, atol=1e-5)
    hooked = sample(run, model, positive, negative)  # SetClipHooks attached the hooks to both
    reference = sample(run, other_model, encode(run, other_clip, "a red cube"), encode(run, other_clip, ""))
    torch.testing.assert_close(hooked["samples"], reference["samples"], rtol=1e-4, atol=1e-4)
    plain = sample(run, model, encode(run, clip, "a red cube"), encode(run, clip, ""))
    assert (hooked["samples"] - plain["samples"]).abs().max() > 1e-3


def test_property_nodes_write_comfyuis_keys(run):
    hook_a = HookGroup()
    base = [[torch.ones(1, 2, 4), {"pooled_output": None}]]
    new = [[torch.zeros(1, 2, 4), {"pooled_output": None, "hooks": hook_a}]]
    mask = torch.ones(8, 8)
    hook_b = lora_hook({}, 1.0, 1.0)
    [out] = run(hooks.ConditioningSetProperties().set_properties, new, 0.6, "mask bounds", mask=mask, hooks=hook_b,
                timesteps=(0.2, 0.7))
    assert set(out[0][1]) == {"pooled_output", "hooks", "mask", "set_area_to_bounds", "mask_strength",
                              "start_percent", "end_percent"}
    assert out[0][1]["hooks"] == hook_a.combine(hook_b) and out[0][1]["mask"].shape == (1, 8, 8)
    assert (out[0][1]["set_area_to_bounds"], out[0][1]["mask_strength"]) == (True, 0.6)
    assert (out[0][1]["start_percent"], out[0][1]["end_percent"]) == (0.2, 0.7)
    assert "hooks" in new[0][1] and "mask" not in new[0][1]  # the input is not changed
    [plain] = run(hooks.ConditioningSetProperties().set_properties, base, 0.5, "default")
    assert plain[0][1] == {"pooled_output": None}  # strength only matters with a mask
    [combined] = run(hooks.ConditioningSetPropertiesAndCombine().set_properties, base, new, 1.0, "default",
                     mask=mask)
    assert len(combined) == 2 and combined[0] is base[0] and combined[1][1]["set_area_to_bounds"] is False
    [default] = run(hooks.ConditioningSetDefaultAndCombine().set_default_and_combine, base, base, hooks=hook_b)
    assert default[1][1] == {"pooled_output": None, "hooks": hook_b, "default": True}
    pos, neg = run(hooks.PairConditioningSetDefaultAndCombine().set_default_and_combine, base, new, base, base)
    assert pos[1][1] == {"pooled_output": None, "default": True} and neg[0] is new[0]
    pos, neg = run(hooks.PairConditioningCombine().combine, base, new, new, base)
    assert (len(pos), pos[1] is new[0], neg[1] is base[0]) == (2, True, True)
    pos, neg = run(hooks.PairConditioningSetPropertiesAndCombine().set_properties, base, base, new, new, 1.0,
                   "default", timesteps=(0.0, 0.3))
    assert pos[1][1]["end_percent"] == neg[1][1]["end_percent"] == 0.3 and "end_percent" not in pos[0][1]


def test_keyframe_and_combine_nodes(run):
    [kf] = run(hooks.CreateHookKeyframesInterpolated().create_hook_keyframes, 1.0, 0.0, "linear", 0.0, 1.0, 3)
    assert [(k.strength, k.start_percent, k.guarantee_steps) for k in kf.keyframes] == [
        (1.0, 0.0, 1), (0.5, 0.5, 0), (0.0, 1.0, 0)]
    [kf2] = run(hooks.CreateHookKeyframe().create_hook_keyframe, 2.0, 0.25, prev_hook_kf=kf)
    assert [k.start_percent for k in kf2.keyframes] == [0.0, 0.25, 0.5, 1.0] and len(kf.keyframes) == 3
    [single] = run(hooks.CreateHookKeyframesFromFloats().create_hook_keyframes, 0.3, 0.4, 0.9)
    assert [(k.strength, k.start_percent) for k in single.keyframes] == [(pytest.approx(0.3), pytest.approx(0.4))]
    a, b, c = lora_hook({}, 1.0, 1.0), lora_hook({}, 0.5, 1.0), lora_hook({}, 0.2, 0.0)
    assert run(hooks.CombineHooks().combine_hooks) == (None,)
    assert run(hooks.CombineHooks().combine_hooks, hooks_B=a)[0] is a
    [all_eight] = run(hooks.CombineHooksEight().combine_hooks, hooks_A=a, hooks_C=b, hooks_H=c, hooks_D=a)
    assert all_eight.hooks == a.hooks + b.hooks + c.hooks
    [none] = run(hooks.CreateHookLora().create_hook, "missing.safetensors", 0.0, 0.0)
    assert len(none) == 0  # both strengths 0: nothing is read, an empty group comes back


def test_hooks_stack_on_a_model_with_loaded_loras_and_leave_its_weights(run, sd1, lora_name):
    model, clip, _ = sd1
    positive, negative = encode(run, clip, "a red cube"), encode(run, clip, "")
    [lora_model] = run(cn.LoraLoaderModelOnly().load_lora_model_only, model, lora_name, 0.5)
    [stronger] = run(cn.LoraLoaderModelOnly().load_lora_model_only, model, lora_name, 1.2)
    reference = sample(run, stronger, positive, negative)
    weaker = sample(run, lora_model, positive, negative)  # the engine now holds the 0.5 LoRA in the weights
    patched = {k: v.clone() for k, v in model.unet.state_dict().items()}
    [hook_group] = run(hooks.CreateHookLoraModelOnly().create_hook_model_only, lora_name, 0.7)
    hooked = sample(run, lora_model, *both_hooked(run, positive, negative, hook_group))
    # (W + 0.5·Δ) + 0.7·Δ against W + 1.2·Δ: equal up to float32 rounding, amplified by six cfg-4 steps.
    torch.testing.assert_close(hooked["samples"], reference["samples"], rtol=2e-3, atol=2e-3)
    assert (hooked["samples"] - weaker["samples"]).abs().max() > 5e-2
    assert all(torch.equal(patched[k], v) for k, v in model.unet.state_dict().items())


def test_hook_file_combos_list_the_folder_only_where_services_are_installed(node_services):
    (node_services.folders.model_roots("loras")[0] / "style.safetensors").write_bytes(b"")
    assert hooks.CreateHookLoraModelOnly.INPUT_TYPES() == {
        "required": {"lora_name": (["style.safetensors"],), "strength_model": ("FLOAT", hooks._HOOK_STRENGTH)},
        "optional": {"prev_hooks": ("HOOKS",)}}


def test_hook_file_combos_are_empty_outside_a_prompt():
    assert hooks.CreateHookModelAsLora.INPUT_TYPES()["required"]["ckpt_name"] == ([],)
