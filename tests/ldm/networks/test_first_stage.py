"""The paper's first stages (KL-f4/f16/f32, VQ-f4/f8/f16): parity with diffusers' ``VQModel`` and
``AutoencoderKL``, detection from keys and shapes, and the VAE handle on them.

diffusers' single-file converter knows neither VQ models nor attention inside the levels, so the
CompVis -> diffusers renaming for those is written here (names read from diffusers' Encoder,
Decoder and VQModel modules); on a KL-f4 it is checked against diffusers' own converter.
"""

from __future__ import annotations

import re
import warnings

import pytest
import torch

from ldm.loading.checkpoint import save_state_dict
from ldm.loading.detect import VAE_PREFIX
from ldm.loading.first_stage import CODEBOOK_KEY, KL, VQ, FirstStageError, build_first_stage, detect_first_stage
from ldm.loading.tiny_first_stage import TINY_FIRST_STAGES, tiny_first_stage_spec, tiny_first_stage_state_dict
from ldm.loading.weights import adopt_weights
from ldm.model import build_vae, load_vae
from ldm.networks.autoencoder import VaeConfig
from ldm.networks.vq_autoencoder import VQAutoencoder

PLENTY = 1 << 40

# --- CompVis -> diffusers names (test oracle only) -------------------------------------------------

_RESNET_LEAF = {"nin_shortcut": "conv_shortcut"}
_ATTN_LEAF = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
_TOP = {"norm_out": "conv_norm_out"}


def _leaf(leaf: str, table: dict[str, str]) -> str:
    head, _, rest = leaf.partition(".")
    return f"{table.get(head, head)}.{rest}"


def compvis_to_diffusers(state_dict: dict[str, torch.Tensor], levels: int) -> dict[str, torch.Tensor]:
    """CompVis first-stage keys -> diffusers ``VQModel`` / ``AutoencoderKL`` keys (attention kernels
    [C, C, 1, 1] become the [C, C] matrices of diffusers' linear projections)."""
    out = {}
    for key, value in state_dict.items():
        if m := re.match(r"^(encoder\.down|decoder\.up)\.(\d+)\.(block|attn)\.(\d+)\.(.+)$", key):
            part, level, kind, index, leaf = m.groups()
            level = int(level) if part == "encoder.down" else levels - 1 - int(level)  # up_blocks[0]: lowest
            blocks = "encoder.down_blocks" if part == "encoder.down" else "decoder.up_blocks"
            name = (f"{blocks}.{level}.resnets.{index}.{_leaf(leaf, _RESNET_LEAF)}" if kind == "block"
                    else f"{blocks}.{level}.attentions.{index}.{_leaf(leaf, _ATTN_LEAF)}")
        elif m := re.match(r"^(encoder\.down|decoder\.up)\.(\d+)\.(downsample|upsample)\.(.+)$", key):
            part, level, kind, leaf = m.groups()
            level = int(level) if part == "encoder.down" else levels - 1 - int(level)
            blocks = "encoder.down_blocks" if part == "encoder.down" else "decoder.up_blocks"
            name = f"{blocks}.{level}.{kind}rs.0.{leaf}"
        elif m := re.match(r"^(encoder|decoder)\.mid\.(block_1|block_2|attn_1)\.(.+)$", key):
            part, which, leaf = m.groups()
            name = (f"{part}.mid_block.attentions.0.{_leaf(leaf, _ATTN_LEAF)}" if which == "attn_1"
                    else f"{part}.mid_block.resnets.{int(which[-1]) - 1}.{_leaf(leaf, _RESNET_LEAF)}")
        elif m := re.match(r"^(encoder|decoder)\.(.+)$", key):
            name = f"{m.group(1)}.{_leaf(m.group(2), _TOP)}"
        else:
            name = key  # quant_conv, post_quant_conv, quantize.embedding
        if "attentions" in name and value.ndim == 4:
            value = value[:, :, 0, 0]
        out[name] = value
    return out


def _diffusers_structure(config: VaeConfig) -> dict:
    levels = config.levels
    return dict(
        in_channels=config.in_channels, out_channels=config.out_channels,
        block_out_channels=[config.ch * m for m in config.ch_mult], layers_per_block=config.num_res_blocks,
        latent_channels=config.z_channels, norm_num_groups=32, mid_block_add_attention=config.mid_attn,
        down_block_types=["AttnDownEncoderBlock2D" if config.has_attn(i) else "DownEncoderBlock2D"
                          for i in range(levels)],
        up_block_types=["AttnUpDecoderBlock2D" if config.has_attn(levels - 1 - i) else "UpDecoderBlock2D"
                        for i in range(levels)])


def diffusers_first_stage(name: str, state_dict: dict[str, torch.Tensor]):
    from diffusers import AutoencoderKL, VQModel

    spec = tiny_first_stage_spec(name)
    structure = _diffusers_structure(spec.config)
    if spec.kind == VQ:
        model = VQModel(**structure, num_vq_embeddings=spec.n_embed, vq_embed_dim=spec.config.embed_dim)
    else:
        model = AutoencoderKL(**structure)
    model.load_state_dict(compvis_to_diffusers(state_dict, spec.config.levels), strict=True)
    return model.eval()


def ours(name: str, seed: int = 3):
    state_dict = tiny_first_stage_state_dict(name, seed=seed)
    model = build_first_stage(detect_first_stage(state_dict))
    adopt_weights(model, state_dict)
    return model, state_dict


def assert_close_relative(mine: torch.Tensor, reference: torch.Tensor, tolerance: float = 1e-4):
    assert mine.shape == reference.shape
    scale = reference.abs().max().item()
    assert (mine - reference).abs().max().item() <= tolerance * scale


def _pixels(height: int = 64, width: int = 48, seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# --- parity ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["vq-f4", "vq-f4-noattn", "vq-f16"])
def test_vq_matches_diffusers_vqmodel(name):
    model, state_dict = ours(name)
    theirs = diffusers_first_stage(name, state_dict)
    x = _pixels()
    with torch.no_grad():
        h = model.encode(x)
        h_ref = theirs.encode(x).latents
        quantised = model.quantize(h)
        quantised_ref, _, (_, _, indices_ref) = theirs.quantize(h_ref)
        decoded = model.decode(h)
        decoded_ref = theirs.decode(h_ref).sample
    ratio = tiny_first_stage_spec(name).downscale_ratio
    assert h.shape == (2, model.config.embed_dim, 64 // ratio, 48 // ratio)
    assert_close_relative(h, h_ref)
    assert torch.equal(model.quantize.indices(h).flatten(), indices_ref.flatten())
    assert_close_relative(quantised, quantised_ref)
    assert_close_relative(decoded, decoded_ref)
    assert decoded.shape == x.shape


@pytest.mark.parametrize("name", ["kl-f16", "kl-f32"])
def test_kl_with_attention_in_levels_matches_diffusers(name):
    model, state_dict = ours(name)
    theirs = diffusers_first_stage(name, state_dict)
    ratio = tiny_first_stage_spec(name).downscale_ratio
    x = _pixels(64, 96)
    z = torch.randn(2, model.config.embed_dim, 64 // ratio, 96 // ratio, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mean, logvar = model.encode(x)
        posterior = theirs.encode(x).latent_dist
        decoded, decoded_ref = model.decode(z), theirs.decode(z).sample
    assert_close_relative(mean, posterior.mean)
    assert_close_relative(logvar, posterior.logvar)
    assert_close_relative(decoded, decoded_ref)


def test_kl_f4_matches_diffusers_through_its_own_converter(oracle):
    """KL-f4 (no attention in levels) goes through diffusers' LDM converter, which also checks the
    renaming this file uses for the models that converter cannot take."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    model, state_dict = ours("kl-f4")
    config = model.config
    full = {VAE_PREFIX + k: v for k, v in state_dict.items()}
    theirs = oracle.vae(full, config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = convert_ldm_vae_checkpoint(full, _diffusers_structure(config))
    renamed = compvis_to_diffusers(state_dict, config.levels)
    assert set(renamed) == set(converted)
    assert all(torch.equal(renamed[k].reshape(converted[k].shape), converted[k]) for k in converted)
    x = _pixels(32, 40)
    z = torch.randn(1, 3, 8, 10, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        mean, _ = model.encode(x)
        assert_close_relative(mean, theirs.encode(x).latent_dist.mean)
        assert_close_relative(model.decode(z), theirs.decode(z).sample)


def test_quantiser_picks_the_nearest_entry_in_chunks(monkeypatch):
    """Chunked matching (bounded distance matrix) picks exactly the brute-force nearest entries."""
    import ldm.networks.vq_autoencoder as vq

    model, state_dict = ours("vq-f8-n256")
    codebook = state_dict[CODEBOOK_KEY]
    h = torch.randn(2, 4, 5, 7, generator=torch.Generator().manual_seed(4)) * 0.5
    flat = h.permute(0, 2, 3, 1).reshape(-1, 4)
    brute = torch.cdist(flat, codebook).argmin(dim=1).reshape(2, 5, 7)
    monkeypatch.setattr(vq, "DISTANCE_CHUNK_ELEMENTS", codebook.shape[0] * 3)  # 3 rows per chunk
    chunks = []
    addmm = torch.addmm
    monkeypatch.setattr(torch, "addmm", lambda *args, **kwargs: chunks.append(1) or addmm(*args, **kwargs))
    assert torch.equal(model.quantize.indices(h), brute)
    assert len(chunks) == -(-2 * 5 * 7 // 3)  # ceil(70 rows / 3)
    quantised = model.quantize(h)
    assert torch.equal(quantised, codebook[brute].permute(0, 3, 1, 2))
    assert torch.equal(model.quantize(quantised), quantised)  # codebook entries are fixed points


# --- detection ---------------------------------------------------------------------------------------

#: release -> (kind, downscale factor, latent channels, codebook entries, attention levels, mid attention)
EXPECTED = {
    "kl-f4": (KL, 4, 3, None, (), True),
    "kl-f8": (KL, 8, 4, None, (), True),
    "kl-f16": (KL, 16, 16, None, (4,), True),
    "kl-f32": (KL, 32, 64, None, (4, 5), True),
    "vq-f4": (VQ, 4, 3, 64, (), True),
    "vq-f4-noattn": (VQ, 4, 3, 64, (), False),
    "vq-f8": (VQ, 8, 4, 64, (3,), True),
    "vq-f8-n256": (VQ, 8, 4, 256, (3,), True),
    "vq-f16": (VQ, 16, 8, 64, (4,), True),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_release_is_detected_from_keys_and_shapes(name):
    assert set(EXPECTED) == set(TINY_FIRST_STAGES)
    spec = detect_first_stage(tiny_first_stage_state_dict(name))
    kind, ratio, channels, n_embed, attn_levels, mid_attn = EXPECTED[name]
    assert (spec.kind, spec.downscale_ratio, spec.latent_channels, spec.n_embed) == (kind, ratio, channels, n_embed)
    assert tuple(i for i in range(spec.config.levels) if spec.config.has_attn(i)) == attn_levels
    assert spec.config.mid_attn == mid_attn and spec.config.double_z == (kind == KL)
    assert spec == tiny_first_stage_spec(name)
    assert isinstance(build_first_stage(spec), VQAutoencoder) == (kind == VQ)


def _without(state_dict: dict, prefix: str) -> dict:
    return {k: v for k, v in state_dict.items() if not k.startswith(prefix)}


def test_a_codebook_narrower_than_the_latent_is_refused():
    state_dict = tiny_first_stage_state_dict("vq-f4")
    state_dict[CODEBOOK_KEY] = torch.randn(64, 4)  # the latent has 3 channels
    with pytest.raises(FirstStageError, match=r"shape \[64, 4\].*must be 3 wide"):
        detect_first_stage(state_dict)


def test_a_one_latent_encoder_without_codebook_is_refused():
    with pytest.raises(FirstStageError, match="no codebook"):
        detect_first_stage(_without(tiny_first_stage_state_dict("vq-f8"), "quantize."))


def test_a_codebook_beside_a_gaussian_encoder_is_refused():
    state_dict = tiny_first_stage_state_dict("kl-f4")
    state_dict[CODEBOOK_KEY] = torch.randn(64, 3)
    with pytest.raises(FirstStageError, match="mean and log-variance"):
        detect_first_stage(state_dict)


def test_a_quant_conv_that_does_not_join_encoder_and_latent_is_refused():
    state_dict = tiny_first_stage_state_dict("vq-f16")
    state_dict["quant_conv.weight"] = torch.randn(8, 16, 1, 1)
    with pytest.raises(FirstStageError, match=r"quant_conv.weight has shape \[8, 16, 1, 1\], expected \[8, 8, 1, 1\]"):
        detect_first_stage(state_dict)


def test_linear_attention_and_foreign_weights_are_refused_by_name():
    state_dict = _without(tiny_first_stage_state_dict("vq-f4"), "encoder.mid.attn_1.")
    state_dict["encoder.mid.attn_1.to_qkv.weight"] = torch.randn(288, 96, 1, 1)
    with pytest.raises(FirstStageError, match="linear attention"):
        detect_first_stage(state_dict)
    with pytest.raises(FirstStageError, match="not a first-stage autoencoder.*encoder.conv_in"):
        detect_first_stage({"input_blocks.0.0.weight": torch.zeros(1)})


# --- the VAE handle ----------------------------------------------------------------------------------

def _handle(fp32, name: str, seed: int = 3):
    return build_vae(tiny_first_stage_state_dict(name, seed=seed), compute=fp32, free_memory=lambda: PLENTY)


def test_vq_handle_encodes_the_prequant_latent_and_quantises_on_decode(fp32):
    vae = _handle(fp32, "vq-f4")
    assert (vae.kind, vae.downscale_ratio, vae.latent_channels, vae.scale_factor) == (VQ, 4, 3, 1.0)
    pixels = torch.rand(1, 34, 41, 3, generator=torch.Generator().manual_seed(5))
    latents = vae.encode(pixels)
    assert latents.shape == (1, 3, 8, 10)
    cropped = pixels[:, 1:33, 0:40].movedim(-1, 1) * 2 - 1  # centre crop to multiples of 4
    with torch.no_grad():
        torch.testing.assert_close(latents, vae.model.encode(cropped))
        snapped = vae.model.quantize(latents)
    assert not torch.equal(snapped, latents)
    torch.testing.assert_close(vae.decode(latents), vae.decode(snapped))
    with pytest.raises(TypeError, match="no posterior distribution"):
        vae.encode_distribution(pixels)
    vae.scale_factor = 0.5  # set by an LDM config that names one
    assert vae.scale_factor == 0.5


@pytest.mark.parametrize("name, ratio, channels", [("kl-f4", 4, 3), ("kl-f16", 16, 16), ("kl-f32", 32, 64),
                                                   ("vq-f8", 8, 4), ("vq-f16", 16, 8)])
def test_handle_factor_and_channels_come_from_the_model(fp32, name, ratio, channels):
    vae = _handle(fp32, name)
    assert (vae.downscale_ratio, vae.latent_channels) == (ratio, channels)
    latents = vae.encode(torch.rand(1, 2 * ratio + 3, 3 * ratio + 1, 3))  # cropped to 2r x 3r
    assert latents.shape == (1, channels, 2, 3)
    assert vae.decode(latents).shape == (1, 2 * ratio, 3 * ratio, 3)
    if vae.kind == KL:
        mean, _ = vae.encode_distribution(torch.rand(1, 2 * ratio, 3 * ratio, 3))
        assert mean.shape == (1, channels, 2, 3)


@pytest.mark.parametrize("name", ["vq-f4-noattn", "vq-f16"])
def test_vq_tiles_use_the_model_factor(fp32, name):
    vae = _handle(fp32, name)
    r = vae.downscale_ratio
    latents = torch.randn(1, vae.latent_channels, 6, 5, generator=torch.Generator().manual_seed(6)) * 0.5
    whole = vae.decode(latents)
    torch.testing.assert_close(vae.decode_tiled(latents, tile_size=8 * r, overlap=2 * r), whole)
    calls = []
    decode_chw = vae._decode_chw
    vae._decode_chw = lambda z: calls.append(tuple(z.shape)) or decode_chw(z)
    tiled = vae.decode_tiled(latents, tile_size=4 * r, overlap=r)
    assert tiled.shape == whole.shape == (1, 6 * r, 5 * r, 3) and torch.isfinite(tiled).all()
    assert len(calls) > 1 and all(max(shape[-2:]) <= 4 for shape in calls)
    pixels = torch.rand(1, 6 * r, 5 * r, 3)
    torch.testing.assert_close(vae.encode_tiled(pixels, tile_size=8 * r, overlap=2 * r), vae.encode(pixels))


def test_memory_estimate_counts_only_the_attention_there_is(fp32):
    with_attn, without = _handle(fp32, "vq-f4"), _handle(fp32, "vq-f4-noattn")
    shape = (1, 3, 32, 32)
    assert without.decode_memory_bytes(shape) < with_attn.decode_memory_bytes(shape)


def test_a_vq_first_stage_loads_from_an_ldm_checkpoint_file(tmp_path, fp32):
    state_dict = tiny_first_stage_state_dict("vq-f8", seed=7)
    path = tmp_path / "ldm.safetensors"
    save_state_dict(path, {VAE_PREFIX + k: v for k, v in state_dict.items()})
    vae = load_vae(path, compute=fp32)
    assert isinstance(vae.model, VQAutoencoder) and vae.model.n_embed == 64
    assert torch.equal(vae.model.quantize.embedding.weight, state_dict[CODEBOOK_KEY])
