"""The UNet's control input and T2I-Adapters, against diffusers.

diffusers' UNet2DConditionModel takes ControlNet residuals (``down_block_additional_residuals``,
``mid_block_additional_residual``) and T2I-Adapter features (``down_intrablock_additional_residuals``);
fed the same tensors, our UNet with ComfyUI's control dict must give the same prediction.
"""

from __future__ import annotations

import pytest
import torch

from ldm.control.loading import control_model_from_state_dict
from ldm.control.t2i_adapter import adapter_residuals
from ldm.loading.detect import UNET_PREFIX, detect_unet
from ldm.loading.weights import strip_prefix
from ldm.model import build_unet
from ldm.networks.adm import sdxl_label
from ldm.tiny import tiny_checkpoint


def _unets(family, fp32, oracle):
    state_dict, metadata = tiny_checkpoint(family, seed=3, include_text=False)
    unet_sd = strip_prefix(state_dict, UNET_PREFIX)
    handle = build_unet(unet_sd, detect_unet(unet_sd, metadata), compute=fp32)
    return handle.unet, handle.config, oracle.unet(state_dict, handle.config)


def _inputs(config, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, 4, 16, 16, generator=g), torch.tensor([3.0, 741.0]),
            torch.randn(2, 7, config.context_dim, generator=g))


def _close(ours, theirs):
    scale = theirs.abs().max().item()
    assert scale > 0.1
    assert (ours - theirs).abs().max().item() <= 1e-4 * scale


def _residuals_like_encoder(unet, x, t, context, y=None, seed=1):
    """Random residuals shaped like each input block's output and the middle block's."""
    shapes = []

    def keep(_module, _args, out):
        shapes.append(out.shape)

    hooks = [block.register_forward_hook(keep) for block in list(unet.input_blocks) + [unet.middle_block]]
    with torch.no_grad():
        unet(x, t, context, y=y)
    for hook in hooks:
        hook.remove()
    g = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(shape, generator=g) for shape in shapes]
    return tensors[:-1], tensors[-1]


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_controlnet_residuals_are_added_where_diffusers_adds_them(family, fp32, oracle):
    ours, config, theirs = _unets(family, fp32, oracle)
    x, t, context = _inputs(config)
    y, added = None, None
    if config.adm_in_channels:
        pooled = torch.randn(2, config.adm_in_channels - 6 * 256)
        y = sdxl_label(pooled, width=512, height=512, crop_w=0, crop_h=0, target_width=512, target_height=512)
        added = {"text_embeds": pooled, "time_ids": torch.tensor([[512.0, 512.0, 0.0, 0.0, 512.0, 512.0]] * 2)}
    down, middle = _residuals_like_encoder(ours, x, t, context, y)
    control = {"output": list(down), "middle": [middle]}
    with torch.no_grad():
        mine = ours(x, t, context, y=y, control=control)
        reference = theirs(x, t, context, added_cond_kwargs=added, down_block_additional_residuals=tuple(down),
                           mid_block_additional_residual=middle).sample
        plain = ours(x, t, context, y=y)
    _close(mine, reference)
    assert (mine - plain).abs().max() > 1e-2  # the residuals changed the prediction
    assert len(control["output"]) == len(down)  # the caller's lists are not consumed


def test_no_control_and_zero_residuals_leave_the_prediction_unchanged(fp32, oracle):
    ours, config, _ = _unets("sd1", fp32, oracle)
    x, t, context = _inputs(config)
    down, middle = _residuals_like_encoder(ours, x, t, context)
    zeros = {"output": [torch.zeros_like(d) for d in down], "middle": [torch.zeros_like(middle)]}
    with torch.no_grad():
        plain = ours(x, t, context)
        assert torch.equal(ours(x, t, context, control=None), plain)
        assert torch.equal(ours(x, t, context, control=zeros), plain)


def _diffusers_adapter(kind: str, channels: list[int], image_channels: int = 3):
    from diffusers import T2IAdapter

    torch.manual_seed(7)
    factor = 16 if kind == "full_adapter_xl" else 8
    blocks = 4 if kind == "light_adapter" else 2
    return T2IAdapter(in_channels=image_channels, channels=channels, num_res_blocks=blocks,
                      downscale_factor=factor, adapter_type=kind).eval()


def _light_to_tencentarc(state_dict: dict) -> dict:
    """diffusers' light-adapter names in TencentARC's layout (``body.i.body.k`` residual pairs)."""
    out = {}
    for key, value in state_dict.items():
        key = key.removeprefix("adapter.").replace(".resnets.", ".body.")
        out[key] = value
    return out


def test_full_adapter_features_and_unet_match_diffusers(fp32, oracle):
    adapter = _diffusers_adapter("full_adapter", [32, 64])
    control = control_model_from_state_dict(dict(adapter.state_dict()))  # diffusers layout on disk
    assert control.kind == "t2i_adapter" and control.image_channels == 3
    image = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        features = control.network(image=image)
        expected = adapter(image)
    for ours, theirs in zip(features, expected, strict=True):
        _close(ours, theirs)

    unet, config, reference = _unets("sd1", fp32, oracle)
    x, t, context = _inputs(config)
    with torch.no_grad():
        mine = unet(x, t, context, control=adapter_residuals(features, xl=False))
        theirs = reference(x, t, context, down_intrablock_additional_residuals=[f.clone() for f in expected]).sample
    _close(mine, theirs)


def test_xl_adapter_features_match_diffusers_and_land_after_blocks_3_5_8_and_middle():
    adapter = _diffusers_adapter("full_adapter_xl", [8, 16, 32, 32])
    control = control_model_from_state_dict(dict(adapter.state_dict()))
    assert control.network.config.xl
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        features = control.network(image=image)
        expected = adapter(image)
    for ours, theirs in zip(features, expected, strict=True):
        _close(ours, theirs)
    placed = adapter_residuals(features, xl=True)
    # consumed from the end: input block i gets placed["input"][-1 - i]
    by_block = {i: r for i, r in enumerate(reversed(placed["input"])) if r is not None}
    assert list(by_block) == [3, 5, 8]
    assert [r is f for r, f in zip(by_block.values(), features[:3])] == [True] * 3
    assert placed["middle"] == [features[3]]


def test_light_adapter_in_tencentarc_layout_matches_diffusers():
    adapter = _diffusers_adapter("light_adapter", [32, 64, 64], image_channels=1)
    control = control_model_from_state_dict(_light_to_tencentarc(adapter.state_dict()))
    assert control.network.config.kind == "light" and control.image_channels == 1
    image = torch.rand(1, 1, 256, 256, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        features = control.network(image=image)
        expected = adapter(image)
    for ours, theirs in zip(features, expected, strict=True):
        _close(ours, theirs)
