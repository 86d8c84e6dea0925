"""ldm.networks.ops layers: no random init, weights cast to the input per call."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ldm.networks.ops import META, Operations


def test_layers_on_meta_own_no_memory_and_adopt_weights_by_assignment():
    layer = META.Linear(3, 2)
    assert layer.weight.is_meta
    weight, bias = torch.randn(2, 3, dtype=torch.float16), torch.randn(2, dtype=torch.float16)
    layer.load_state_dict({"weight": weight, "bias": bias}, assign=True)
    assert layer.weight.data_ptr() == weight.data_ptr()  # adopted, not copied
    x = torch.randn(4, 3)
    out = layer(x)  # fp16 storage, fp32 compute: cast per call
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, F.linear(x, weight.float(), bias.float()))
    assert layer.weight.dtype == torch.float16  # storage untouched


def test_every_layer_casts_to_the_input_dtype():
    ops = Operations(dtype=torch.bfloat16)
    conv, gn = ops.Conv2d(4, 8, 3, padding=1), ops.GroupNorm(2, 8)
    ln, emb = ops.LayerNorm(8), ops.Embedding(10, 8)
    for module in (conv, gn, ln, emb):
        for p in module.parameters():
            torch.nn.init.normal_(p)
    x = torch.randn(1, 4, 5, 5)
    y = conv(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, F.conv2d(x, conv.weight.float(), conv.bias.float(), padding=1))
    z = gn(y.to(torch.bfloat16))
    assert z.dtype == torch.bfloat16  # computed in fp32, returned in the input dtype
    torch.testing.assert_close(z.float(), F.group_norm(y.to(torch.bfloat16).float(), 2, gn.weight.float(),
                                                       gn.bias.float()), atol=2e-2, rtol=2e-2)
    assert ln(torch.randn(3, 8)).dtype == torch.float32
    assert emb(torch.tensor([1, 2]), out_dtype=torch.float32).dtype == torch.float32


def test_fp8_storage_is_cast_per_call():
    layer = Operations(dtype=torch.float8_e4m3fn).Linear(4, 4, bias=False)
    layer.weight.data = torch.randn(4, 4).to(torch.float8_e4m3fn)
    x = torch.randn(2, 4)
    torch.testing.assert_close(layer(x), x @ layer.weight.float().T)


def test_no_random_init():
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    Operations().Linear(64, 64)
    assert torch.equal(state, torch.random.get_rng_state())  # init drew no random numbers
