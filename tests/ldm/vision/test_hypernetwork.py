"""A1111 hypernetworks: the MLP math by hand, the file formats, and the patch inside the UNet."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ldm.loading.checkpoint import save_state_dict
from ldm.loading.weights import adopt_weights, random_weights
from ldm.networks.unet import UNetModel
from ldm.tiny import TextWidths, tiny_unet_config
from ldm.vision.hypernetwork import HypernetworkError, load_hypernetwork
from ldm.vision.tiny import tiny_hypernetwork, write_tiny_hypernetwork


def _by_hand(x, state, layer_norm=False):
    """relu MLP: Linear, relu, [LN], Linear, [relu if LN: ComfyUI activates the last with norms], [LN]."""
    tensors = list(state.values())
    w0, b0, rest = tensors[0], tensors[1], tensors[2:]
    h = F.relu(x @ w0.T + b0)
    if layer_norm:
        h = F.layer_norm(h, (h.shape[-1],), rest[0], rest[1])
        rest = rest[2:]
    h = h @ rest[0].T + rest[1]
    if layer_norm:
        h = F.layer_norm(F.relu(h), (h.shape[-1],), rest[2], rest[3])
    return h


@pytest.mark.parametrize("layer_norm", [False, True])
def test_patch_is_x_plus_strength_times_mlp(tmp_path, layer_norm):
    data = tiny_hypernetwork((16, 24), layer_norm=layer_norm, seed=1)
    patch = load_hypernetwork(write_tiny_hypernetwork(tmp_path / "h.pt", (16, 24), layer_norm=layer_norm, seed=1),
                              strength=0.7)
    g = torch.Generator().manual_seed(2)
    n, context, value = torch.randn(2, 5, 8, generator=g), torch.randn(2, 7, 16, generator=g), torch.randn(2, 7, 16, generator=g)
    n_out, k_out, v_out = patch(n, context, value, {})
    assert torch.equal(n_out, n)
    assert torch.allclose(k_out, context + 0.7 * _by_hand(context, data[16][0], layer_norm), atol=1e-5)
    assert torch.allclose(v_out, value + 0.7 * _by_hand(value, data[16][1], layer_norm), atol=1e-5)
    # a width without MLPs passes through
    other = torch.randn(1, 3, 12, generator=g)
    assert patch(n, other, other, {})[1] is other


def test_safetensors_layout_and_options(tmp_path):
    data = tiny_hypernetwork((16,), seed=3, activation="tanh")
    flat = {f"16.{i}.{k}": v for i, state in enumerate(data[16]) for k, v in state.items()}
    save_state_dict(tmp_path / "h.safetensors", flat, {"activation_func": "tanh", "is_layer_norm": "False"})
    from_pt = load_hypernetwork(write_tiny_hypernetwork(tmp_path / "h.pt", (16,), seed=3, activation="tanh"), 1.0)
    from_st = load_hypernetwork(tmp_path / "h.safetensors", 1.0)
    x = torch.randn(1, 4, 16, generator=torch.Generator().manual_seed(4))
    assert torch.equal(from_pt(x, x, x, {})[1], from_st(x, x, x, {})[1])
    w0, b0, w1, b1 = data[16][0].values()
    assert torch.allclose(from_st(x, x, x, {})[1], x + torch.tanh(x @ w0.T + b0) @ w1.T + b1, atol=1e-5)


def test_unsupported_activation_is_an_error(tmp_path):
    path = write_tiny_hypernetwork(tmp_path / "h.pt", (16,), activation="relu")
    data = torch.load(path, weights_only=True)
    data["activation_func"] = "gelu-ish"
    torch.save(data, path)
    with pytest.raises(HypernetworkError, match="unsupported hypernetwork activation"):
        load_hypernetwork(path, 1.0)


def test_cross_attention_patch_in_the_unet_equals_a_rewritten_context(tmp_path):
    """With equal key and value MLPs for the context width only, the patched UNet sees the
    context ``c + s·mlp(c)`` in every cross-attention: the same as running it on that context."""
    config = tiny_unet_config("sd1", TextWidths(context=48))
    unet = UNetModel(config)
    adopt_weights(unet, random_weights(unet, torch.Generator().manual_seed(0)))
    data = tiny_hypernetwork((48,), seed=5)
    data[48][1] = dict(data[48][0])
    torch.save(data, tmp_path / "h.pt")
    patch = load_hypernetwork(tmp_path / "h.pt", strength=0.5)
    g = torch.Generator().manual_seed(6)
    x, context = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 5, 48, generator=g)
    t = torch.tensor([500.0])
    with torch.no_grad():
        patched = unet(x, t, context=context, transformer_options={"patches": {"attn2_patch": [patch]}})
        rewritten = unet(x, t, context=context + 0.5 * _by_hand(context, data[48][0]))
        plain = unet(x, t, context=context)
    assert torch.allclose(patched, rewritten, atol=1e-5)
    assert not torch.allclose(patched, plain, atol=1e-3)
