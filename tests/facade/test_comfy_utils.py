"""``comfy.utils``: progress through Weft's events, ComfyUI's resampling, safe file loading, tiling."""

import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ldm.imaging import operations as imaging
from ldm.loading.checkpoint import CheckpointError


@pytest.fixture
def cu(pack_studio):
    import comfy.utils

    return comfy.utils


def _progress(events):
    return [(data["value"], data["max"]) for event, data in events if event == "progress"]


def test_progress_bar_in_a_running_node_moves_the_editor_bar(pack_studio):
    (report,) = pack_studio.load("progress_pack.py")
    assert report.loaded, report.error
    pack_studio.run({"1": {"class_type": "ProgressLoop", "inputs": {"steps": 4, "interrupt_at": -1}},
                     "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}})
    progress = [(e, d) for e, d in pack_studio.events if e == "progress"]
    assert progress and all(d["node"] == "1" and d["prompt_id"] == "facade-test" for _, d in progress)
    assert _progress(pack_studio.events)[0] == (1, 4) and _progress(pack_studio.events)[-1] == (4, 4)


def test_progress_bar_thins_out_messages_and_forwards_previews(pack_studio, cu):
    from graph.context import ExecutionContext, InterruptFlag, use_context

    sent = []
    ctx = ExecutionContext("p", "7", "7", pack_studio.services, InterruptFlag(),
                           lambda value, total, preview: sent.append((value, total, preview)))
    image = Image.new("RGB", (1024, 512))
    with use_context(ctx):
        bar = cu.ProgressBar(10000)
        for _ in range(10000):
            bar.update(1)
        bar.update_absolute(3, 10, ("JPEG", image, 256))
    assert sent[0][:2] == (1, 10000) and (10000, 10000, None) in sent and len(sent) < 300
    value, total, preview = sent[-1]
    assert (value, total) == (3, 10) and preview.size == (256, 128)


def test_custom_global_hook(cu):
    seen = []
    previous = cu.PROGRESS_BAR_HOOK
    try:
        cu.set_progress_bar_global_hook(
            lambda value, total, preview, node_id=None: seen.append((value, total, node_id)))
        cu.ProgressBar(5, node_id="9").update_absolute(7)
    finally:
        cu.set_progress_bar_global_hook(previous)
    assert seen == [(5, 5, "9")]


def test_progress_bar_outside_a_node_is_harmless(cu):
    bar = cu.ProgressBar(3)
    bar.update(1)
    bar.update_absolute(2, 4)
    assert (bar.current, bar.total) == (2, 4)


@pytest.mark.parametrize("method", ["nearest-exact", "bilinear", "area", "bicubic", "lanczos", "bislerp"])
@pytest.mark.parametrize("crop", ["disabled", "center"])
def test_common_upscale_matches_weft_resampling(cu, method, crop):
    samples = torch.rand(2, 3, 12, 20)
    out = cu.common_upscale(samples, 9, 7, method, crop)
    assert out.shape == (2, 3, 7, 9)
    assert torch.equal(out, imaging.resample(samples, 9, 7, method, crop))


def test_common_upscale_shapes(cu):
    video = torch.rand(1, 4, 3, 8, 8)
    out = cu.common_upscale(video, 16, 12, "bilinear", "disabled")
    assert out.shape == (1, 4, 3, 12, 16)
    assert torch.allclose(out[:, :, 1], F.interpolate(video[:, :, 1], size=(12, 16), mode="bilinear"))
    masks = torch.rand(2, 8, 8)
    assert cu.common_upscale(masks, 4, 4, "nearest-exact", "disabled").shape == (2, 4, 4)
    assert cu.common_upscale(torch.rand(1, 1, 4, 4), 8, 8, "nearest", "disabled").shape == (1, 1, 8, 8)


def test_center_crop_cuts_to_the_target_aspect(cu):
    samples = torch.arange(2 * 4, dtype=torch.float32).reshape(1, 1, 2, 4)
    out = cu.common_upscale(samples, 2, 2, "nearest-exact", "center")
    assert torch.equal(out, samples[..., 1:3])


def test_load_torch_file_safetensors_with_metadata(cu, tmp_path):
    path = tmp_path / "w.safetensors"
    cu.save_torch_file({"a": torch.ones(2), "b": torch.zeros(1, dtype=torch.float16)}, str(path), metadata={"k": "v"})
    sd, metadata = cu.load_torch_file(str(path), return_metadata=True)
    assert torch.equal(sd["a"], torch.ones(2)) and sd["b"].dtype == torch.float16 and metadata == {"k": "v"}
    cu.save_torch_file({"a": torch.ones(2)}, str(tmp_path / "bare.safetensors"))
    assert cu.load_torch_file(str(tmp_path / "bare.safetensors"), return_metadata=True)[1] is None
    assert cu.safetensors_header(str(path)).startswith(b"{")


def test_load_torch_file_pickles_only_weights(cu, tmp_path):
    nested = tmp_path / "ip.bin"
    torch.save({"image_proj": {"w": torch.ones(1)}, "ip_adapter": {"1.to_k_ip.weight": torch.ones(2)}}, nested)
    loaded = cu.load_torch_file(str(nested), safe_load=True)
    assert set(loaded) == {"image_proj", "ip_adapter"} and torch.equal(loaded["image_proj"]["w"], torch.ones(1))
    lightning = tmp_path / "model.ckpt"
    torch.save({"state_dict": {"x": torch.ones(3)}, "global_step": 10}, lightning)
    assert list(cu.load_torch_file(str(lightning))) == ["x"]
    single = tmp_path / "emb.pt"
    torch.save({"string_to_param": {"*": torch.ones(1, 4)}}, single)
    assert list(cu.load_torch_file(str(single))) == ["*"]

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.ckpt"
    torch.save({"x": Evil()}, evil)
    with pytest.raises(CheckpointError):
        cu.load_torch_file(str(evil), safe_load=False)
    disguised = tmp_path / "disguised.safetensors"
    disguised.write_bytes(lightning.read_bytes())
    with pytest.raises(CheckpointError):
        cu.load_torch_file(str(disguised))


def test_state_dict_helpers(cu):
    sd = {"model.a": torch.ones(2, 3), "model.b": torch.ones(4, dtype=torch.float16), "other": torch.ones(1)}
    assert cu.calculate_parameters(sd, "model.") == 10
    assert cu.weight_dtype(sd, "model.") == torch.float32
    assert cu.weight_dtype({}) is None
    moved = cu.state_dict_prefix_replace(dict(sd), {"model.": "m."}, filter_keys=True)
    assert set(moved) == {"m.a", "m.b"}
    inplace = cu.state_dict_prefix_replace(dict(sd), {"model.": ""})
    assert set(inplace) == {"a", "b", "other"}
    assert set(cu.state_dict_key_replace(dict(sd), {"other": "renamed"})) == {"model.a", "model.b", "renamed"}


def test_attribute_helpers(cu):
    net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    assert cu.get_attr(net, "0.weight") is net[0].weight
    old = cu.set_attr_param(net, "0.bias", torch.zeros(2))
    assert isinstance(net[0].bias, torch.nn.Parameter) and not net[0].bias.requires_grad and old is not net[0].bias
    storage = net[0].weight.data_ptr()
    cu.copy_to_param(net, "0.weight", torch.ones(2, 2))
    assert net[0].weight.data_ptr() == storage and torch.equal(net[0].weight, torch.ones(2, 2))


def test_batch_helpers(cu):
    t = torch.arange(3).reshape(3, 1)
    assert cu.repeat_to_batch_size(t, 5).flatten().tolist() == [0, 1, 2, 0, 1]
    assert cu.repeat_to_batch_size(t, 2).flatten().tolist() == [0, 1]
    assert cu.repeat_to_batch_size(torch.arange(2).reshape(1, 2), 5, dim=1).tolist() == [[0, 1, 0, 1, 0]]
    five = torch.arange(5)
    assert cu.resize_to_batch_size(five, 3).tolist() == [0, 2, 4]
    assert cu.resize_to_batch_size(torch.arange(2), 4).tolist() == [0, 0, 1, 1]
    assert cu.resize_to_batch_size(five, 1).tolist() == [0]
    mask = cu.reshape_mask(torch.ones(1, 4, 4), (2, 3, 8, 8))
    assert mask.shape == (2, 3, 8, 8)


def test_tiled_scale_blends_to_the_untiled_result(cu):
    samples = torch.rand(2, 3, 50, 37)
    double = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
    steps = cu.get_tiled_scale_steps(37, 50, 16, 16, 4)
    calls = []

    class Bar:
        def update(self, n):
            calls.append(n)

    out = cu.tiled_scale(samples, double, tile_x=16, tile_y=16, overlap=4, upscale_amount=2, pbar=Bar())
    assert out.shape == (2, 3, 100, 74)
    assert torch.allclose(out, double(samples), atol=1e-5)
    assert len(calls) == 2 * steps == 2 * math.ceil((50 - 4) / 12) * math.ceil((37 - 4) / 12)
    encode = lambda t: t[:, :, ::4, ::4] * 3  # noqa: E731  (a "downscaling" function, like a VAE encoder)
    small = cu.tiled_scale_multidim(torch.ones(1, 2, 64, 64), encode, tile=(32, 32), overlap=8,
                                    upscale_amount=4, out_channels=2, downscale=True)
    assert small.shape == (1, 2, 16, 16) and torch.allclose(small, torch.full_like(small, 3.0))


def test_tiled_scale_is_the_upscalers_tiling(cu):
    """One tiler: ComfyUI's arguments map onto ``ldm.imaging.upscale.tiled_scale`` (tile_y, tile_x order,
    upscale_amount as scale, index_formulas as offsets) and give the same tensor."""
    from ldm.imaging import upscale

    def blur_up(t):
        return F.interpolate(t.sin(), scale_factor=3, mode="bilinear")

    samples = torch.rand(1, 3, 50, 37, generator=torch.Generator().manual_seed(0))
    ours = upscale.tiled_scale(blur_up, samples, tile=(12, 20), overlap=5, scale=3, out_channels=3)
    assert torch.equal(cu.tiled_scale(samples, blur_up, tile_x=20, tile_y=12, overlap=5, upscale_amount=3), ours)
    volume = torch.rand(1, 2, 9, 30, 26, generator=torch.Generator().manual_seed(1))

    def frames(t):
        return F.interpolate(t, scale_factor=(1, 2, 2)) + t.mean()

    rules = dict(tile=(4, 16, 16), overlap=(1, 4, 4), out_channels=2)
    twice = (lambda a: a, lambda a: 2 * a, lambda a: 2 * a)
    assert torch.equal(cu.tiled_scale_multidim(volume, frames, upscale_amount=(1, 2, 2), index_formulas=twice,
                                               **rules),
                       upscale.tiled_scale(frames, volume, scale=(1, 2, 2), offsets=twice, **rules))
