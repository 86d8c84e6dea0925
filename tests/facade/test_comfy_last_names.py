"""The last ComfyUI names real packs stopped on: ``comfy.samplers`` internals (efficiency-nodes,
smZNodes, TiledDiffusion), ``comfy.float`` (GGUF), text-encoder and other-family modules
(tinyterraNodes, Advanced-ControlNet, KJNodes), ``comfy.utils``' UNet name tables,
``comfy_api.latest.InputImpl`` / ``Types`` (KJNodes) and ``latent_preview.TAESD`` (Impact-Pack)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def absent(pack_studio):
    from _weft_absent import NotInWeftError

    return NotInWeftError


# -- comfy.samplers ---------------------------------------------------------------------------------

def test_k_diffusion_sampling_under_its_samplers_name(pack_studio):
    import comfy.k_diffusion.sampling
    import comfy.samplers

    assert comfy.samplers.k_diffusion_sampling is comfy.k_diffusion.sampling


def test_ksampler_x0_inpaint_keeps_the_unmasked_latent(pack_studio):
    from comfy.samplers import KSamplerX0Inpaint

    seen = {}

    def model(x, sigma, model_options=None, seed=None):
        seen.update(x=x.clone(), seed=seed, options=model_options)
        return torch.full_like(x, 5.0)

    sigmas = torch.tensor([2.0, 1.0, 0.0])
    inpaint = KSamplerX0Inpaint(model, sigmas)
    inpaint.latent_image = torch.ones(1, 4, 2, 2)
    inpaint.noise = torch.full((1, 4, 2, 2), 0.5)
    x, sigma = torch.zeros(1, 4, 2, 2), torch.tensor([2.0])

    assert torch.equal(inpaint(x, sigma, None, model_options={"k": 1}, seed=3), torch.full_like(x, 5.0))
    assert seen["seed"] == 3 and seen["options"] == {"k": 1}

    mask = torch.zeros(1, 4, 2, 2)
    mask[..., 0] = 1.0  # regenerate the left column, keep the right one
    out = inpaint(x, sigma, mask)
    assert torch.equal(out[..., 0], torch.full((1, 4, 2), 5.0)) and torch.equal(out[..., 1], torch.ones(1, 4, 2))
    # the kept region is the latent noised to the current sigma: 1 + 0.5 * 2
    assert torch.equal(seen["x"][..., 1], torch.full((1, 4, 2), 2.0)) and torch.equal(seen["x"][..., 0], x[..., 0])

    calls = []

    def widen(sigma, denoise_mask, extra_options):
        calls.append(extra_options["sigmas"])
        return torch.ones_like(denoise_mask)

    assert torch.equal(inpaint(x, sigma, mask, model_options={"denoise_mask_function": widen}),
                       torch.full_like(x, 5.0))
    assert calls and calls[0] is sigmas


def test_ksampler_object_is_a_weft_sampler_choice_and_patchable(pack_studio):
    import comfy.k_diffusion.sampling as kds
    import comfy.samplers
    from ldm.sampling.custom import SamplerChoice

    def scaled(model, x, sigmas, extra_args=None, callback=None, disable=None, factor=1.0):
        return x * factor

    sampler = comfy.samplers.KSAMPLER(scaled, {"factor": 2.0}, {"random": True})
    assert isinstance(sampler, SamplerChoice) and isinstance(sampler, comfy.samplers.Sampler)
    assert sampler.spec.random_inpaint_noise and sampler.sampler_function is scaled
    assert torch.equal(sampler.spec.function(None, torch.ones(2), None), torch.full((2,), 2.0))
    sampler.sampler_function = lambda model, x, sigmas, **kw: x * 3  # smZNodes swaps it on the instance
    assert torch.equal(sampler.spec.function(None, torch.ones(2), None), torch.full((2,), 3.0))

    # TiledDiffusion / smZNodes wrap these at import: they must exist and be replaceable.
    saved = {name: getattr(comfy.samplers, name) for name in ("get_area_and_mult", "sample", "sampling_function")}
    saved_methods = (comfy.samplers.KSAMPLER.sample, comfy.samplers.KSampler.sample, comfy.samplers.Sampler.max_denoise)
    try:
        comfy.samplers.KSAMPLER.sample = lambda *a, **k: saved_methods[0](*a, **k)
        comfy.samplers.Sampler.max_denoise = lambda self, *a: saved_methods[2](self, *a)
        for name in saved:
            setattr(comfy.samplers, name, lambda *a, **k: None)
    finally:
        comfy.samplers.KSAMPLER.sample, comfy.samplers.KSampler.sample, comfy.samplers.Sampler.max_denoise = \
            saved_methods
        for name, value in saved.items():
            setattr(comfy.samplers, name, value)

    # Called directly with a ComfyUI-style wrapped model: a model whose x0 is always ``target``
    # ends, after the last Euler step, exactly at ``target``; a zero mask keeps the latent.
    from ldm.sampling.model_sampling import model_sampling_for_family

    target = torch.full((1, 4, 2, 2), 0.25)
    sampling = model_sampling_for_family("sd1", "eps")

    class Wrapped:
        inner_model = type("Inner", (), {"model_sampling": sampling})()

        def __call__(self, x, sigma, model_options=None, seed=None):
            return target.expand_as(x)

    euler = comfy.samplers.KSAMPLER(kds.sample_euler)
    sigmas = torch.tensor([float(sampling.sigma_max), 3.0, 0.0])
    noise, latent = torch.randn(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)
    assert torch.equal(euler.sample(Wrapped(), sigmas, {"seed": 1}, None, noise, latent), target)
    kept = torch.full((1, 4, 2, 2), 0.75)
    assert torch.equal(euler.sample(Wrapped(), sigmas, {"seed": 1}, None, noise, kept,
                                    denoise_mask=torch.zeros(1, 4, 2, 2)), kept)
    assert euler.max_denoise(Wrapped(), sigmas) and not euler.max_denoise(Wrapped(), torch.tensor([1.0, 0.0]))


def test_sampler_internals_are_placeholders(pack_studio, absent):
    import comfy.samplers

    for name in ("sample", "get_area_and_mult", "can_concat_cond", "cond_cat", "wrap_model", "pre_run_control"):
        with pytest.raises(absent, match=rf"comfy\.samplers\.{name}"):
            getattr(comfy.samplers, name)()
    with pytest.raises(absent):
        comfy.samplers.Sampler().sample()


# -- comfy.float ------------------------------------------------------------------------------------

def test_stochastic_rounding_casts_wide_floats(pack_studio):
    import comfy.float

    value = torch.randn(5, 3)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        assert torch.equal(comfy.float.stochastic_rounding(value, dtype, seed=4), value.to(dtype))


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2])
def test_stochastic_rounding_to_fp8_picks_a_neighbour_without_bias(pack_studio, dtype):
    import comfy.float

    grid = torch.arange(256, dtype=torch.uint8).view(dtype).float()
    grid = grid[torch.isfinite(grid)].unique().sort().values
    top = float(grid[-1])
    # representable values (subnormals, normals, the largest) stay as they are
    assert torch.equal(comfy.float.stochastic_rounding(grid, dtype, seed=1).float(), grid)

    generator = torch.Generator().manual_seed(0)
    value = torch.cat([(torch.rand(400, generator=generator) * 2 - 1) * top * 0.9,
                       torch.rand(100, generator=generator) * float(grid[grid > 0][3])])  # subnormals too
    upper = grid[torch.searchsorted(grid, value).clamp(max=len(grid) - 1)]
    lower = grid[(torch.searchsorted(grid, value, right=True) - 1).clamp(min=0)]
    rounded = [comfy.float.stochastic_rounding(value, dtype, seed=seed) for seed in range(300)]
    assert all(r.dtype == dtype for r in rounded)
    stacked = torch.stack([r.float() for r in rounded])
    assert bool(((stacked == lower) | (stacked == upper)).all())
    gap = (upper - lower).clamp(min=1e-30)
    # P(upper) = distance from lower / gap, so the mean is the value: 300 draws, within 5 standard errors
    assert float(((stacked.mean(0) - value).abs() / gap).max()) < 5 * 0.5 / 300 ** 0.5
    assert torch.equal(rounded[7].float(), comfy.float.stochastic_rounding(value, dtype, seed=7).float())
    assert not torch.equal(rounded[7].float(), rounded[8].float())
    clamped = comfy.float.stochastic_rounding(torch.tensor([1e9, -1e9, 0.0]), dtype).float()
    assert clamped.tolist() == [top, -top, 0.0]
    assert comfy.float.manual_stochastic_round_to_float8(value, dtype).dtype == torch.float16


# -- text encoders and other families ---------------------------------------------------------------

def test_other_family_modules_are_placeholders(pack_studio, absent):
    import comfy.ldm.anima.lllite
    import comfy.ldm.anima.model
    import comfy.ldm.flux.math
    import comfy.ldm.lumina.model
    import comfy.sd1_clip
    import comfy.sd3_clip
    import comfy.text_encoders.flux
    import comfy.text_encoders.sd2_clip
    import comfy.text_encoders.sd3_clip
    import comfy.text_encoders.t5

    assert comfy.sd3_clip.SD3ClipModel is comfy.text_encoders.sd3_clip.SD3ClipModel
    assert issubclass(comfy.text_encoders.sd3_clip.T5XXLModel, comfy.sd1_clip.SDClipModel)
    assert issubclass(comfy.text_encoders.sd2_clip.SD2ClipModel, comfy.sd1_clip.SD1ClipModel)
    clip = object()
    for cls in (comfy.sd3_clip.SD3ClipModel, comfy.sd3_clip.T5XXLModel, comfy.text_encoders.flux.FluxClipModel,
                comfy.text_encoders.sd2_clip.SD2ClipModel, comfy.text_encoders.t5.T5,
                comfy.ldm.anima.lllite.AnimaLLLite, comfy.ldm.anima.model.Anima, comfy.ldm.lumina.model.FeedForward):
        assert not isinstance(clip, cls)
        with pytest.raises(absent, match=cls.__name__):
            cls({}, None)

    class Patched(comfy.ldm.lumina.model.FeedForward):  # KJNodes patches methods onto it
        pass

    with pytest.raises(absent, match="model families other than"):
        comfy.ldm.flux.math.apply_rope(None, None, None)
    with pytest.raises(absent):
        comfy.text_encoders.sd3_clip.sd3_clip()


# -- comfy.utils UNet tables -------------------------------------------------------------------------

def test_unet_name_tables(pack_studio, tiny_sd1):
    from safetensors import safe_open

    import comfy.utils
    from ldm.lora.patches import diffusers_unet_weights

    assert ("input_blocks.0.0.weight", "conv_in.weight") in comfy.utils.UNET_MAP_BASIC
    assert ("label_emb.0.2.bias", "add_embedding.linear_2.bias") in comfy.utils.UNET_MAP_BASIC
    assert ("label_emb.0.0.weight", "class_embedding.linear_1.weight") in comfy.utils.UNET_MAP_BASIC
    assert len(comfy.utils.UNET_MAP_BASIC) == 18
    assert comfy.utils.UNET_MAP_RESNET["in_layers.2.weight"] == "conv1.weight"
    assert comfy.utils.UNET_MAP_RESNET["skip_connection.bias"] == "conv_shortcut.bias"
    assert len(comfy.utils.UNET_MAP_RESNET) == 12
    assert comfy.utils.UNET_MAP_ATTENTIONS == {f"{m}.{p}" for m in ("proj_in", "proj_out", "norm")
                                               for p in ("weight", "bias")}
    assert {"attn2.to_out.0.bias", "ff.net.0.proj.weight"} <= comfy.utils.TRANSFORMER_BLOCKS
    assert len(comfy.utils.TRANSFORMER_BLOCKS) == 20

    # Agrees with Weft's own diffusers -> CompVis mapping of a real UNet.
    with safe_open(str(tiny_sd1), "pt") as f:
        prefix = "model.diffusion_model."
        keys = [k[len(prefix):] for k in f.keys() if k.startswith(prefix)]
    mapping = diffusers_unet_weights(keys)
    present = [(c, d) for c, d in comfy.utils.UNET_MAP_BASIC if c in keys and not d.startswith("class_embedding")]
    assert present and all(mapping[d] == c for c, d in present)
    resnet = [k for k in keys if k.startswith("input_blocks.1.0.")]
    assert {k[len("input_blocks.1.0."):] for k in resnet} <= set(comfy.utils.UNET_MAP_RESNET)
    for compvis_suffix, diffusers_suffix in comfy.utils.UNET_MAP_RESNET.items():
        if f"input_blocks.1.0.{compvis_suffix}" in keys:
            assert mapping[f"down_blocks.0.resnets.0.{diffusers_suffix}"] == f"input_blocks.1.0.{compvis_suffix}"


# -- comfy_api.latest --------------------------------------------------------------------------------

def test_video_types_and_placeholder_video_inputs(pack_studio, absent):
    from fractions import Fraction

    from comfy_api.latest import InputImpl, Types, io

    assert Types.VideoContainer.as_input() == ["auto", "mp4"] and Types.VideoCodec.as_input() == ["auto", "h264"]
    assert Types.VideoContainer.get_extension("auto") == "mp4"
    assert Types.VideoContainer.get_extension(Types.VideoContainer.MP4) == "mp4"
    assert Types.VideoContainer("mp4") is Types.VideoContainer.MP4
    components = Types.VideoComponents(images=torch.zeros(2, 8, 8, 3), frame_rate=Fraction(24))
    assert components.audio is None and components.frame_rate == 24
    io.Combo.Input("format", options=Types.VideoContainer.as_input(), default="auto")
    with pytest.raises(absent, match="VideoFromComponents"):
        InputImpl.VideoFromComponents(components)
    with pytest.raises(absent, match="VideoFromFile"):
        InputImpl.VideoFromFile("clip.mp4")


# -- latent_preview.TAESD ------------------------------------------------------------------------------

def test_latent_preview_taesd_decodes_with_weft_decoder(pack_studio, tmp_path, absent):
    import latent_preview
    from ldm.loading.checkpoint import save_state_dict
    from ldm.networks.taesd import taesd_decoder

    torch.manual_seed(0)
    decoder = taesd_decoder(4)
    path = tmp_path / "taesd_decoder.safetensors"
    save_state_dict(path, decoder.state_dict())
    taesd = latent_preview.TAESD(None, str(path), latent_channels=4).to("cpu")
    latents = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(taesd.decode(latents), decoder.eval()(latents) * 2 - 1)
    preview = latent_preview.TAESDPreviewerImpl(taesd).decode_latent_to_preview(latents)
    assert preview.size == (64, 64)
    small = latents * 0.1
    torch.testing.assert_close(latent_preview.TAESD.unscale_latents(latent_preview.TAESD.scale_latents(small)),
                               small, atol=1e-6, rtol=0)
    with pytest.raises(absent, match="TAESD encoders"):
        taesd.encode(torch.zeros(1, 3, 64, 64))
    with pytest.raises(absent, match="TAESD encoders"):
        latent_preview.TAESD("encoder.safetensors", str(path))
