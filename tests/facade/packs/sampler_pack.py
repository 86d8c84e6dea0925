"""A test pack with its own sampler and model patch, written the way real packs write them:
``comfy.samplers.KSampler.SAMPLERS`` combos, ``comfy.sample.sample`` on a ModelPatcher clone,
``set_model_sampler_cfg_function`` / post-cfg / attention patches, ``nodes.common_ksampler``."""

import comfy.model_patcher
import comfy.sample
import comfy.samplers
import nodes
import torch


class PackSampler:
    CATEGORY = "test/pack"
    FUNCTION = "sample"
    RETURN_TYPES = ("LATENT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL",),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}),
            "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
            "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0}),
            "sampler_name": (comfy.samplers.KSampler.SAMPLERS,),
            "scheduler": (comfy.samplers.KSampler.SCHEDULERS,),
            "positive": ("CONDITIONING",),
            "negative": ("CONDITIONING",),
            "latent_image": ("LATENT",),
        }}

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image):
        patched = model.clone()
        assert isinstance(patched, comfy.model_patcher.ModelPatcher)
        latent = comfy.sample.fix_empty_latent_channels(patched, latent_image["samples"])
        noise = comfy.sample.prepare_noise(latent, seed, latent_image.get("batch_index"))
        steps_seen = []
        samples = comfy.sample.sample(patched, noise, steps, cfg, sampler_name, scheduler, positive, negative,
                                      latent, noise_mask=latent_image.get("noise_mask"), seed=seed,
                                      callback=lambda step, x0, x, total: steps_seen.append((step, total)))
        assert steps_seen[-1] == (steps - 1, steps), steps_seen
        out = latent_image.copy()
        out["samples"] = samples
        return (out,)


class PackCommonKSampler(PackSampler):
    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image):
        return nodes.common_ksampler(model, seed, steps, cfg, sampler_name, scheduler, positive, negative,
                                     latent_image)


class ScaledCFG:
    """cfg × scale through a sampler cfg function (the hook ComfyUI's RescaleCFG-style packs use)."""

    CATEGORY = "test/pack"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "scale": ("FLOAT", {"default": 1.0})}}

    def patch(self, model, scale):
        def cfg_function(args):
            cond, uncond = args["cond"], args["uncond"]
            assert "transformer_options" in args["model_options"]
            return uncond + (cond - uncond) * args["cond_scale"] * scale

        patched = model.clone()
        patched.set_model_sampler_cfg_function(cfg_function)
        return (patched,)


class ZeroContext:
    """An attn2 patch that empties the text context's values (IPAdapter-style hook)."""

    CATEGORY = "test/pack"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def patch(self, model):
        def attn2(q, k, v, extra_options):
            return q, k, torch.zeros_like(v)

        patched = model.clone()
        patched.set_model_attn2_patch(attn2)
        return (patched,)


class LatentStash:
    """Output node that keeps the latents it saw (class attribute: a test pack only)."""

    seen: dict = {}
    CATEGORY = "test/pack"
    FUNCTION = "stash"
    RETURN_TYPES = ()
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "key": ("STRING", {"default": "a"})}}

    def stash(self, samples, key):
        LatentStash.seen[key] = samples["samples"].clone()
        return {}


NODE_CLASS_MAPPINGS = {
    "PackSampler": PackSampler,
    "PackCommonKSampler": PackCommonKSampler,
    "ScaledCFG": ScaledCFG,
    "ZeroContext": ZeroContext,
    "LatentStash": LatentStash,
}
