"""A pack's sampler and model patches run on Weft's engine and give Weft's own results."""

from __future__ import annotations

import pytest
import torch


def base_prompt(sampler_node: dict, model_ref=("1", 0)) -> dict:
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny_sd1.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red square", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": sampler_node,
        "6": {"class_type": "LatentStash", "inputs": {"samples": ["5", 0], "key": "out"}},
    }
    sampler_node["inputs"].update({"model": list(model_ref), "positive": ["2", 0], "negative": ["3", 0],
                                   "latent_image": ["4", 0]})
    return prompt


def ksampler(class_type="KSampler", seed=7, cfg=6.0, sampler="euler_ancestral", scheduler="karras", steps=4):
    return {"class_type": class_type, "inputs": {"seed": seed, "steps": steps, "cfg": cfg, "sampler_name": sampler,
                                                 "scheduler": scheduler, "denoise": 1.0}}


def pack_sampler(class_type="PackSampler", **kwargs):
    node = ksampler(class_type, **kwargs)
    del node["inputs"]["denoise"]
    return node




def stash(studio) -> dict:
    return studio.registry.get("LatentStash").node_class.seen


@pytest.fixture
def studio(pack_studio):
    reports = pack_studio.load("sampler_pack.py")
    assert reports[0].loaded, reports[0].error
    return pack_studio


def latent_of(studio, prompt) -> torch.Tensor:
    studio.run(prompt)
    return stash(studio)["out"]


@pytest.mark.parametrize("sampler", ["euler_ancestral", "dpmpp_2m_sde", "dpmpp_2m"])
def test_pack_sampler_equals_weft_ksampler(studio, sampler):
    ours = latent_of(studio, base_prompt(ksampler(sampler=sampler)))
    theirs = latent_of(studio, base_prompt(pack_sampler(sampler=sampler)))
    assert torch.equal(ours, theirs)
    assert latent_of(studio, base_prompt(pack_sampler("PackCommonKSampler", sampler=sampler))).equal(ours)
    different_seed = latent_of(studio, base_prompt(pack_sampler(sampler=sampler, seed=8)))
    assert not torch.equal(different_seed, ours)


def test_pack_sampler_combo_lists_weft_samplers(studio):
    spec = studio.registry.get("PackSampler").inputs()
    assert spec["sampler_name"].type == list(studio.registry.get("KSampler").inputs()["sampler_name"].type)
    assert spec["scheduler"].type == list(studio.registry.get("KSampler").inputs()["scheduler"].type)


def test_cfg_function_patch_changes_the_result_as_in_comfyui(studio):
    plain_cfg6 = latent_of(studio, base_prompt(ksampler(cfg=6.0, sampler="euler")))
    plain_cfg3 = latent_of(studio, base_prompt(ksampler(cfg=3.0, sampler="euler")))
    prompt = base_prompt(ksampler(cfg=6.0, sampler="euler"), model_ref=("7", 0))
    prompt["7"] = {"class_type": "ScaledCFG", "inputs": {"model": ["1", 0], "scale": 0.5}}
    halved = latent_of(studio, prompt)
    # The hook is handed eps-space cond/uncond and its result replaces the cfg combination:
    # cfg 6 with the scale 0.5 hook is cfg 3 (up to float rounding), not cfg 6.
    torch.testing.assert_close(halved, plain_cfg3, rtol=1e-4, atol=1e-4)
    assert (halved - plain_cfg6).abs().max() > 1e-3
    prompt["7"]["inputs"]["scale"] = 1.0
    torch.testing.assert_close(latent_of(studio, prompt), plain_cfg6, rtol=1e-4, atol=1e-4)


def test_attention_patch_reaches_the_unet(studio):
    plain = latent_of(studio, base_prompt(ksampler(sampler="euler")))
    prompt = base_prompt(ksampler(sampler="euler"), model_ref=("7", 0))
    prompt["7"] = {"class_type": "ZeroContext", "inputs": {"model": ["1", 0]}}
    patched = latent_of(studio, prompt)
    assert (patched - plain).abs().max() > 1e-4
    # Positive and negative prompts no longer matter once the context's values are zero.
    prompt["2"]["inputs"]["text"] = "something else entirely"
    torch.testing.assert_close(latent_of(studio, prompt), patched, rtol=1e-5, atol=1e-5)


def test_model_patcher_surface(studio):
    import comfy.model_base
    import comfy.model_patcher
    from ldm.model import load_checkpoint

    model = load_checkpoint(studio.services.folders.model_path("checkpoints", "tiny_sd1.safetensors"),
                            with_clip=False)[0]
    assert isinstance(model, comfy.model_patcher.ModelPatcher)
    assert isinstance(model.model, comfy.model_base.BaseModel) and not isinstance(model.model, comfy.model_base.SDXL)
    assert model.model.model_type == comfy.model_base.ModelType.EPS
    assert model.get_model_object("model_sampling") is not None
    twin = model.clone()
    twin.model_options["sampler_cfg_function"] = len
    assert twin.hooks.cfg_function is len and "sampler_cfg_function" not in model.model_options
    key = "diffusion_model.out.2.bias"
    added = twin.add_patches({key: (torch.ones_like(model.model_state_dict()[key]),)}, 0.5, 1.0)
    assert added == [key] and not model.patches and twin.patches["out.2.bias"][0].strength == 0.5
    assert twin.is_clone(model)
    rewrapped = comfy.model_patcher.ModelPatcher(model.model, model.load_device, model.offload_device)
    assert rewrapped.unet is model.unet and isinstance(rewrapped, comfy.model_patcher.ModelPatcher)


def test_model_merge_the_comfyui_way_blends_weights(pack_studio):
    """ModelMergeSimple-style: model B's key patches added to a clone of A at (1 - r, r)."""
    from ldm.lora.patches import patched_weight
    from ldm.model import load_checkpoint

    path = pack_studio.services.folders.model_path("checkpoints", "tiny_sd1.safetensors")
    a, b = load_checkpoint(path, with_clip=False)[0], load_checkpoint(path, with_clip=False)[0]
    key = "out.2.weight"
    with torch.no_grad():
        b.unet.state_dict()[key].mul_(-3.0).add_(0.25)
    merged = a.clone()
    ratio = 0.3
    added = merged.add_patches(b.get_key_patches("diffusion_model."), 1.0 - ratio, ratio)
    assert "diffusion_model." + key in added
    expected = ratio * a.unet.state_dict()[key].float() + (1.0 - ratio) * b.unet.state_dict()[key].float()
    stored = a.unet.state_dict()[key]
    got = patched_weight(stored, merged.patches[key])  # computed in float32, returned in the file's dtype
    torch.testing.assert_close(got, expected.to(stored.dtype))
    merged.model_options = {"sampler_cfg_function": len}  # replacing the whole dict, as some packs do
    assert merged.hooks.cfg_function is len and merged.model_options["transformer_options"] == {}


def test_clones_share_one_base_model_and_its_unpatched_sampling(pack_studio):
    from ldm.model import load_checkpoint
    from ldm.sampling.discrete_variants import discrete_model_sampling

    path = pack_studio.services.folders.model_path("checkpoints", "tiny_sd1.safetensors")
    model = load_checkpoint(path, with_clip=False)[0]
    twin = model.clone()
    twin.add_object_patch("model_sampling", discrete_model_sampling("sd1", "v_prediction", False))
    assert twin.model is model.model  # ComfyUI's is_clone test: `other.model is self.model`
    assert twin.get_model_object("model_sampling") is twin.hooks.model_sampling
    assert model.model.model_sampling.prediction.name == "eps"  # the base knows no clone's patch


def test_model_options_helpers_return_copies_with_the_hook_added(pack_studio):
    import comfy.model_patcher as mp

    original = {"sampler_post_cfg_function": [len], "transformer_options": {}}
    post = mp.set_model_options_post_cfg_function(original, print, disable_cfg1_optimization=True)
    assert post["sampler_post_cfg_function"] == [len, print] and post["disable_cfg1_optimization"] is True
    assert original == {"sampler_post_cfg_function": [len], "transformer_options": {}}
    pre = mp.set_model_options_pre_cfg_function(original, print)
    assert pre["sampler_pre_cfg_function"] == [print] and "disable_cfg1_optimization" not in pre
    replaced = mp.set_model_options_patch_replace(original, print, "attn2", "input", 4, 0)
    assert replaced["transformer_options"]["patches_replace"]["attn2"] == {("input", 4, 0): print}
    assert original["transformer_options"] == {}


# ComfyUI's comfy/samplers.py (2025-12): KSAMPLER_NAMES, and SAMPLER_NAMES = KSAMPLER_NAMES + three.
COMFY_KSAMPLER_NAMES = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "exp_heun_2_x0",
    "exp_heun_2_x0_sde", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm",
    "lcm", "ipndm", "ipndm_v", "deis", "cfgpp_ud10_ab", "res_multistep", "res_multistep_cfg_pp",
    "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp",
    "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece"]


def test_sampler_name_lists_equal_comfyuis(pack_studio):
    import comfy.samplers

    # ComfyUI's lists, then the paper's samplers Weft adds after them (k-diffusion-style functions too)
    assert comfy.samplers.KSAMPLER_NAMES == COMFY_KSAMPLER_NAMES + ["ddim_eta", "plms"]
    assert comfy.samplers.SAMPLER_NAMES == COMFY_KSAMPLER_NAMES + ["ddim", "uni_pc", "uni_pc_bh2", "ddim_eta", "plms"]
    assert comfy.samplers.KSampler.SAMPLERS == comfy.samplers.SAMPLER_NAMES


def test_pack_guiders_run_inside_the_predict_noise_wrappers(pack_studio, tiny_sd1):
    """ComfyUI's ``CFGGuider.outer_predict_noise``: a MODEL's predict_noise wrappers wrap each call
    of the guider's ``predict_noise`` — once per evaluation (``sampling_function`` inside it runs
    none), with one ``class_obj`` for the whole run — whether or not it calls ``sampling_function``."""
    import comfy.samplers
    import comfy.sd

    model, clip, _, _ = comfy.sd.load_checkpoint_guess_config(str(tiny_sd1))
    seen = []

    def recording(executor, x, sigma, model_options, seed):
        seen.append(executor.class_obj)
        return executor(x, sigma, model_options, seed)

    wrapped = model.clone()
    wrapped.hooks.predict_noise_wrappers.append(recording)

    class OwnGuidance(comfy.samplers.CFGGuider):
        def predict_noise(self, x, timestep, model_options=None, seed=None):
            cond, uncond = comfy.samplers.calc_cond_batch(
                self.inner_model, [self.conds["positive"], self.conds["negative"]], x, timestep, model_options)
            return uncond + (cond - uncond) * self.cfg

    positive = clip.encode_from_tokens_scheduled(clip.tokenize("a red square"))
    negative = clip.encode_from_tokens_scheduled(clip.tokenize(""))
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "normal", 3)
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    results = []
    for guider_class in (comfy.samplers.CFGGuider, OwnGuidance):
        guider = guider_class(wrapped)
        guider.set_conds(positive, negative)
        guider.set_cfg(5.0)
        seen.clear()
        results.append(guider.sample(noise, torch.zeros_like(noise), comfy.samplers.sampler_object("euler"),
                                     sigmas, seed=1))
        assert len(seen) == 3 and all(obj is seen[0] for obj in seen), guider_class
    torch.testing.assert_close(results[0], results[1])
