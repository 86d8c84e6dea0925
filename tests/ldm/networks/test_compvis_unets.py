"""The CompVis latent-diffusion UNets (Rombach et al. 2022): unconditional, concat-conditioned and
class-conditional, built from state-dict shapes and named by ``ldm.loading.detect``.

Parity: the unconditional and super-resolution layouts (ADM attention blocks, FiLM ResBlocks,
ResBlock resampling) against diffusers' ``UNet2DModel`` with the same weights, renamed by the
CompVis -> diffusers table below (ours); the class-conditional layout (spatial transformers over a
one-token class context) against diffusers' ``UNet2DConditionModel`` fed ``embedding[class]``.
Detection: the published configs (``models/ldm/*/config.yaml``) at full size, on the meta device.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from ldm.loading.detect import CLASS_EMBEDDING_KEY, UNET_PREFIX, DetectionError, checkpoint_structure, detect_unet
from ldm.loading.weights import adopt_weights, random_weights
from ldm.networks.class_embedder import ClassEmbedder
from ldm.networks.legacy_attention import AttentionBlock
from ldm.networks.ops import Operations
from ldm.networks.unet import UNetConfig, UNetConfigError, UNetModel, unet_config_from_state_dict
from tests.ldm.conftest import ldm_yaml

HEADS_16 = {"weft.num_head_channels": "16"}  # several heads per layer at tiny widths

# --- tiny layouts ---------------------------------------------------------------------------------

# CelebA-HQ / FFHQ style: 3 -> 3, ADM attention at the two inner levels and the middle.
UNCOND = UNetConfig(in_channels=3, out_channels=3, model_channels=32, channel_mult=(1, 2, 2), num_res_blocks=(2, 2, 2),
                    transformer_depth=(0, 0, 1, 1, 1, 1), transformer_depth_middle=1,
                    transformer_depth_output=(1, 1, 1, 1, 1, 1, 0, 0, 0), context_dim=None,
                    use_linear_in_transformer=False, num_head_channels=16, legacy_attention=True)
# LSUN churches style: FiLM ResBlocks and ResBlock resampling.
UNCOND_FILM = UNetConfig(in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2), num_res_blocks=(2, 2),
                         transformer_depth=(0, 0, 1, 1), transformer_depth_middle=1,
                         transformer_depth_output=(1, 1, 1, 0, 0, 0), context_dim=None,
                         use_linear_in_transformer=False, num_head_channels=16, legacy_attention=True,
                         use_scale_shift_norm=True, resblock_updown=True)
# bsr_sr style: the low-res image (3 channels) concatenated to the latent (3): 6 in, 3 out.
SUPER_RESOLUTION = UNetConfig(in_channels=6, out_channels=3, model_channels=32, channel_mult=(1, 2),
                              num_res_blocks=(2, 2), transformer_depth=(0, 0, 1, 1), transformer_depth_middle=1,
                              transformer_depth_output=(1, 1, 1, 0, 0, 0), context_dim=None,
                              use_linear_in_transformer=False, num_head_channels=16, legacy_attention=True)
# cin256 style: spatial transformers (1x1-conv projections) at every level over a 512-wide context.
CLASS_CONDITIONAL = UNetConfig(in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2),
                               num_res_blocks=(1, 1), transformer_depth=(1, 1), transformer_depth_middle=1,
                               transformer_depth_output=(1, 1, 1, 1), context_dim=512,
                               use_linear_in_transformer=False, num_head_channels=16)


def random_unet(config: UNetConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    return random_weights(UNetModel(config), torch.Generator().manual_seed(seed))


def detected_unet(unet_sd: dict, metadata: dict, structure=None) -> tuple[str, UNetModel]:
    detection = detect_unet(unet_sd, metadata, structure=structure)
    unet = UNetModel(detection.config)
    adopt_weights(unet, unet_sd, what=detection.family)
    return detection.family, unet


# --- CompVis -> diffusers UNet2DModel names (our table) -------------------------------------------

RESNET = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
          "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}
TOP = {"time_embed.0": "time_embedding.linear_1", "time_embed.2": "time_embedding.linear_2",
       "input_blocks.0.0": "conv_in", "out.0": "conv_norm_out", "out.2": "conv_out"}


def _attention(weights: dict, compvis: str, diffusers: str, heads: int) -> dict:
    """ADM attention -> diffusers ``Attention``: the legacy qkv rows [heads, 3, d] split into
    to_q / to_k / to_v, 1x1 Conv1d kernels as Linear weights."""
    qkv_w, qkv_b = weights[f"{compvis}.qkv.weight"][..., 0], weights[f"{compvis}.qkv.bias"]
    channels = qkv_w.shape[1]
    w = qkv_w.reshape(heads, 3, channels // heads, channels)
    b = qkv_b.reshape(heads, 3, channels // heads)
    out = {f"{diffusers}.group_norm.{p}": weights[f"{compvis}.norm.{p}"] for p in ("weight", "bias")}
    for index, name in enumerate(("to_q", "to_k", "to_v")):
        out[f"{diffusers}.{name}.weight"] = w[:, index].reshape(channels, channels)
        out[f"{diffusers}.{name}.bias"] = b[:, index].reshape(channels)
    out[f"{diffusers}.to_out.0.weight"] = weights[f"{compvis}.proj_out.weight"][..., 0]
    out[f"{diffusers}.to_out.0.bias"] = weights[f"{compvis}.proj_out.bias"]
    return out


def compvis_to_unet2d(weights: dict, config: UNetConfig) -> dict:
    out, used = {}, set()

    def rename(compvis: str, diffusers: str) -> None:
        for key, value in weights.items():
            if key.startswith(compvis + "."):
                out[diffusers + key[len(compvis):]] = value
                used.add(key)

    def resnet(compvis: str, diffusers: str) -> None:
        for ours, theirs in RESNET.items():
            rename(f"{compvis}.{ours}", f"{diffusers}.{theirs}")

    def attention(compvis: str, diffusers: str) -> None:
        channels = weights[f"{compvis}.qkv.weight"].shape[1]
        out.update(_attention(weights, compvis, diffusers, channels // config.num_head_channels))
        used.update(k for k in weights if k.startswith(compvis + "."))

    for ours, theirs in TOP.items():
        rename(ours, theirs)
    n, res_index = 1, 0
    for level in range(config.levels):
        for j in range(config.num_res_blocks[level]):
            resnet(f"input_blocks.{n}.0", f"down_blocks.{level}.resnets.{j}")
            if config.transformer_depth[res_index]:
                attention(f"input_blocks.{n}.1", f"down_blocks.{level}.attentions.{j}")
            n, res_index = n + 1, res_index + 1
        if level != config.levels - 1:
            if config.resblock_updown:
                resnet(f"input_blocks.{n}.0", f"down_blocks.{level}.downsamplers.0")
            else:
                rename(f"input_blocks.{n}.0.op", f"down_blocks.{level}.downsamplers.0.conv")
            n += 1
    resnet("middle_block.0", "mid_block.resnets.0")
    attention("middle_block.1", "mid_block.attentions.0")
    resnet("middle_block.2", "mid_block.resnets.1")
    n = 0
    for up, level in enumerate(reversed(range(config.levels))):
        for j in range(config.num_res_blocks[level] + 1):
            resnet(f"output_blocks.{n}.0", f"up_blocks.{up}.resnets.{j}")
            slot = 1
            if config.transformer_depth_output[n]:
                attention(f"output_blocks.{n}.1", f"up_blocks.{up}.attentions.{j}")
                slot = 2
            if level and j == config.num_res_blocks[level]:
                if config.resblock_updown:
                    resnet(f"output_blocks.{n}.{slot}", f"up_blocks.{up}.upsamplers.0")
                else:
                    rename(f"output_blocks.{n}.{slot}.conv", f"up_blocks.{up}.upsamplers.0.conv")
            n += 1
    assert used == set(weights), f"not renamed: {sorted(set(weights) - used)[:5]}"
    return out


def diffusers_unet2d(weights: dict, config: UNetConfig):
    """diffusers' UNet2DModel of ``config``'s layout, holding ``weights`` (CompVis names)."""
    from diffusers import UNet2DModel

    def attended(level: int) -> bool:
        start = sum(config.num_res_blocks[:level])
        return bool(config.transformer_depth[start])

    updown = config.resblock_updown
    down = [("AttnDownBlock2D" if attended(level) else "ResnetDownsampleBlock2D" if updown else "DownBlock2D")
            for level in range(config.levels)]
    up = [("AttnUpBlock2D" if attended(level) else "ResnetUpsampleBlock2D" if updown else "UpBlock2D")
          for level in reversed(range(config.levels))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = UNet2DModel(
            in_channels=config.in_channels, out_channels=config.out_channels,
            block_out_channels=tuple(config.model_channels * m for m in config.channel_mult),
            layers_per_block=config.num_res_blocks[0], down_block_types=tuple(down), up_block_types=tuple(up),
            attention_head_dim=config.num_head_channels, norm_num_groups=32, attn_norm_num_groups=32,
            flip_sin_to_cos=True, freq_shift=0,  # CompVis' timestep embedding: cos first, no shift
            resnet_time_scale_shift="scale_shift" if config.use_scale_shift_norm else "default",
            downsample_type="resnet" if updown else "conv", upsample_type="resnet" if updown else "conv")
    model.load_state_dict(compvis_to_unet2d(weights, config), strict=True)
    return model.eval()


def _assert_parity(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    scale = theirs.abs().max().item()
    assert scale > 0.1  # a meaningful output, not a vanishing one
    diff = (ours - theirs).abs().max().item()
    assert diff <= 1e-4 * scale, f"max abs diff {diff:.3g} vs output scale {scale:.3g}"


@pytest.mark.parametrize("config,family", [(UNCOND, "ldm_uncond"), (UNCOND_FILM, "ldm_uncond"),
                                           (SUPER_RESOLUTION, "ldm_concat")],
                         ids=["uncond", "uncond-film-updown", "super-resolution"])
def test_adm_attention_unets_match_diffusers_unet2d(config, family):
    weights = random_unet(config, seed=1)
    found, ours = detected_unet(weights, HEADS_16)
    assert found == family and ours.config == config  # read back from the shapes alone
    reference = diffusers_unet2d(weights, config)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, config.in_channels, 16, 16, generator=g)  # SR: noisy latent ++ low-res image
    t = torch.tensor([5.0, 640.0])
    with torch.no_grad():
        _assert_parity(ours(x, t), reference(x, t).sample)


def _attention_reference(block: AttentionBlock, x: torch.Tensor, legacy: bool) -> torch.Tensor:
    """ADM attention written out: q, k, v per head, softmax(q k^T / sqrt(d)) v, residual. Legacy
    order: the qkv rows hold each head's q, k, v together; the new order: all q, then all k, v."""
    b, c, h, w = x.shape
    heads, d = block.num_heads, c // block.num_heads
    flat = x.reshape(b, c, h * w)
    qkv = torch.nn.functional.conv1d(block.norm(flat), block.qkv.weight, block.qkv.bias)  # [B, 3C, T]
    if legacy:
        q, k, v = qkv.reshape(b, heads, 3, d, h * w).unbind(2)
    else:
        q, k, v = (part.reshape(b, heads, d, h * w) for part in qkv.chunk(3, dim=1))
    weights = torch.softmax(torch.einsum("bhdt,bhds->bhts", q, k) / d ** 0.5, dim=-1)
    out = torch.einsum("bhts,bhds->bhdt", weights, v).reshape(b, c, h * w)
    return (flat + torch.nn.functional.conv1d(out, block.proj_out.weight, block.proj_out.bias)).reshape(b, c, h, w)


def test_attention_block_splits_heads_before_q_k_v():
    block = AttentionBlock(64, 4, Operations())
    adopt_weights(block, random_weights(block, torch.Generator().manual_seed(4)), what="attention")
    x = torch.randn(2, 64, 5, 3, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ours = block(x)
        torch.testing.assert_close(ours, _attention_reference(block, x, legacy=True), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(ours, _attention_reference(block, x, legacy=False), atol=1e-3)


def diffusers_cross_attention_unet(checkpoint: dict, config: UNetConfig):
    """diffusers' UNet2DConditionModel with the UNet of ``checkpoint``, converted by diffusers.

    diffusers' LDM config reader leaves the head split of conv-projection transformers with
    ``num_head_channels`` unset, so it is given here: heads per level (diffusers reads
    ``attention_head_dim`` as the number of heads).
    """
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, create_unet_diffusers_config_from_ldm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dconfig = create_unet_diffusers_config_from_ldm(ldm_yaml(config), checkpoint, image_size=64)
    dconfig["attention_head_dim"] = [config.model_channels * m // config.num_head_channels
                                     for m in config.channel_mult]
    model = UNet2DConditionModel(**dconfig)
    model.load_state_dict(convert_ldm_unet_checkpoint(checkpoint, dconfig), strict=True)
    return model.eval()


def test_class_conditional_unet_attends_to_the_class_vector():
    weights = random_unet(CLASS_CONDITIONAL, seed=6)
    embedding = torch.randn(1001, 512, generator=torch.Generator().manual_seed(7))
    checkpoint = {UNET_PREFIX + k: v for k, v in weights.items()} | {CLASS_EMBEDDING_KEY: embedding}
    family, ours = detected_unet(weights, HEADS_16, checkpoint_structure(checkpoint))
    assert family == "ldm_cin"
    embedder = ClassEmbedder(1001, 512)
    adopt_weights(embedder, {"embedding.weight": embedding}, what="class embedder")
    assert embedder.unconditional_class == 1000  # cin256-v2's "no class" row, for guidance
    labels = torch.tensor([207, 1000])
    # The paper's class conditioning: the class's learned vector as a one-token context.
    context = embedding[labels].reshape(2, 1, 512)
    torch.testing.assert_close(embedder(labels), context)
    reference = diffusers_cross_attention_unet(checkpoint, ours.config)
    x = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(8))
    t = torch.tensor([30.0, 900.0])
    with torch.no_grad():
        _assert_parity(ours(x, t, context=embedder(labels)), reference(x, t, encoder_hidden_states=context).sample)


# --- detection of the published layouts -----------------------------------------------------------

def _levels(mult, attention_levels, nrb=2):
    """transformer_depth (input) and transformer_depth_output for attention at ``attention_levels``."""
    levels = range(len(mult))
    inputs = tuple(1 if level in attention_levels else 0 for level in levels for _ in range(nrb))
    outputs = tuple(1 if level in attention_levels else 0 for level in reversed(levels) for _ in range(nrb + 1))
    return inputs, outputs


def _published(mc, mult, attention_levels, in_ch, out_ch, heads, context_dim=None, **extra) -> UNetConfig:
    """A published config: 2 ResBlocks per level; ADM attention unless there is a context."""
    inputs, outputs = _levels(mult, attention_levels)
    return UNetConfig(in_ch, out_ch, mc, mult, (2,) * len(mult), inputs, 1, outputs, context_dim, False,
                      num_heads=heads[0], num_head_channels=heads[1], legacy_attention=context_dim is None, **extra)


# attention_resolutions are downsampling factors: level l has factor 2**l
PUBLISHED = {
    "celeba256 / ffhq256 / lsun_beds256": (_published(224, (1, 2, 3, 4), {1, 2, 3}, 3, 3, (-1, 32)), "ldm_uncond"),
    "lsun_churches256": (_published(192, (1, 2, 2, 4, 4), {0, 1, 2, 3}, 4, 4, (8, -1), use_scale_shift_norm=True,
                                    resblock_updown=True), "ldm_uncond"),
    "bsr_sr": (_published(160, (1, 2, 2, 4), {3}, 6, 3, (-1, 32)), "ldm_concat"),
    "semantic_synthesis256": (_published(128, (1, 4, 8), set(), 6, 3, (8, -1)), "ldm_concat"),
    "inpainting_big": (_published(256, (1, 2, 3, 4), {1, 2, 3}, 7, 3, (8, -1), resblock_updown=True), "ldm_concat"),
    "cin256": (_published(256, (1, 2, 4), {0, 1, 2}, 4, 4, (-1, 32), context_dim=512), "ldm_cin"),
    "cin256-v2": (_published(192, (1, 2, 3, 5), {1, 2, 3}, 3, 3, (1, -1), context_dim=512), "ldm_cin"),
}
CLASS_EMBEDDINGS = {"cin256": (1000, 512), "cin256-v2": (1001, 512)}


def _meta_state_dict(config: UNetConfig) -> dict:
    with torch.device("meta"):
        return UNetModel(config).state_dict()


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_layouts_are_named_and_split_into_their_heads(name):
    config, family = PUBLISHED[name]
    unet = _meta_state_dict(config)
    structure = None
    if name in CLASS_EMBEDDINGS:
        structure = checkpoint_structure({CLASS_EMBEDDING_KEY: torch.empty(CLASS_EMBEDDINGS[name], device="meta")})
    detection = detect_unet(unet, {}, structure=structure)
    assert (detection.family, detection.prediction) == (family, "eps")
    assert detection.config == config


def test_published_key_names():
    churches = _meta_state_dict(PUBLISHED["lsun_churches256"][0])
    assert "input_blocks.3.0.in_layers.2.weight" in churches  # the down-sampling ResBlock of level 0
    assert "input_blocks.3.0.op.weight" not in churches
    assert "output_blocks.2.1.emb_layers.1.weight" in churches  # deepest level: up-ResBlock, no attention
    assert "output_blocks.5.2.in_layers.0.weight" in churches  # after an attention block
    assert tuple(churches["input_blocks.1.0.emb_layers.1.weight"].shape) == (2 * 192, 4 * 192)  # FiLM
    celeba = _meta_state_dict(PUBLISHED["celeba256 / ffhq256 / lsun_beds256"][0])
    assert tuple(celeba["input_blocks.4.1.qkv.weight"].shape) == (3 * 448, 448, 1)
    assert tuple(celeba["middle_block.1.proj_out.weight"].shape) == (896, 896, 1)
    assert "input_blocks.3.0.op.weight" in celeba


def test_near_misses_are_refused_by_name():
    flipped = UNetConfig(3, 6, 32, (1, 2), (1, 1), (0, 1), 1, (1, 1, 0, 0), None, False,
                         num_head_channels=16, legacy_attention=True)
    with pytest.raises(DetectionError, match="neither an unconditional LDM .* nor a concat-conditioned"):
        detect_unet(_meta_state_dict(flipped), {})
    labelled = UNetConfig(3, 3, 32, (1, 2), (1, 1), (0, 1), 1, (1, 1, 0, 0), None, False,
                          num_head_channels=16, legacy_attention=True, num_classes=1000)
    with pytest.raises(DetectionError, match="ADM attention blocks and a label embedding"):
        detect_unet(_meta_state_dict(labelled), {})
    cin = _meta_state_dict(PUBLISHED["cin256"][0])
    wrong_width = checkpoint_structure({CLASS_EMBEDDING_KEY: torch.empty(1000, 640, device="meta")})
    with pytest.raises(DetectionError, match=r"class embedding \[1000, 640\] does not fit .* 512-wide"):
        detect_unet(cin, {}, structure=wrong_width)
    with pytest.raises(DetectionError, match="32 channels do not split into heads of 24"):
        detect_unet(_meta_state_dict(UNCOND), {"weft.num_head_channels": "24"})


def test_mixed_attention_kinds_are_not_a_unet():
    weights = dict(_meta_state_dict(CLASS_CONDITIONAL))
    legacy = _meta_state_dict(UNCOND)
    weights = {k: v for k, v in weights.items() if not k.startswith("middle_block.1.")}
    weights.update({k: v for k, v in legacy.items() if k.startswith("middle_block.1.")})
    with pytest.raises(UNetConfigError, match="mixes spatial transformers and ADM attention"):
        unet_config_from_state_dict(weights)
