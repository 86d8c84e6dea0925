"""``node_helpers``: conditioning values, Pillow retries, hashes, dtypes, alpha."""

import hashlib
import io

import pytest
import torch
from PIL import Image, ImageFile


@pytest.fixture
def nh(pack_studio):
    import node_helpers

    return node_helpers


def _cond():
    return [[torch.zeros(1, 2, 3), {"pooled_output": None, "strength": 1.0}]]


def test_conditioning_set_values_copies(nh):
    cond = _cond()
    out = nh.conditioning_set_values(cond, {"strength": 0.5, "area": (8, 8, 0, 0)})
    assert out[0][1] == {"pooled_output": None, "strength": 0.5, "area": (8, 8, 0, 0)}
    assert cond[0][1] == {"pooled_output": None, "strength": 1.0} and out[0][0] is cond[0][0]
    appended = nh.conditioning_set_values(nh.conditioning_set_values(cond, {"hooks": [1]}), {"hooks": [2]},
                                          append=True)
    assert appended[0][1]["hooks"] == [1, 2]
    assert nh.conditioning_set_values(cond, {"hooks": [2]}, append=True)[0][1]["hooks"] == [2]


def test_conditioning_values_within_a_timestep_range(nh):
    out = nh.conditioning_set_values_with_timestep_range(_cond(), {"strength": 2.0}, 0.25, 0.5)
    ranges = [(e["start_percent"], e["end_percent"], e["strength"]) for _, e in out]
    assert ranges[1] == (0.25, 0.5, 2.0)
    assert ranges[0] == (0.0, 0.25 - nh.RANGE_GAP, 1.0) and ranges[2] == (0.5 + nh.RANGE_GAP, 1.0, 1.0)
    empty = _cond()
    assert nh.conditioning_set_values_with_timestep_range(empty, {"strength": 2.0}, 0.6, 0.5) is empty
    outside = [[torch.zeros(1), {"start_percent": 0.8, "end_percent": 1.0}]]
    assert nh.conditioning_set_values_with_timestep_range(outside, {"x": 1}, 0.0, 0.5) == outside


def test_pillow_retries_truncated_images(nh):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="PNG")
    truncated = buffer.getvalue()[:-40]

    def load(data):
        image = Image.open(io.BytesIO(data))
        image.load()
        return image

    with pytest.raises(OSError):
        load(truncated)
    assert nh.pillow(load, truncated).size == (64, 64)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_hasher_dtypes_and_alpha(nh, pack_studio):
    from comfy.cli_args import args

    assert nh.hasher() is hashlib.sha256
    args.default_hashing_function = "md5"
    try:
        assert nh.hasher() is hashlib.md5
    finally:
        del args.default_hashing_function
    assert nh.string_to_torch_dtype("bf16") is torch.bfloat16 and nh.string_to_torch_dtype("fp8") is None
    rgb, rgba = torch.rand(1, 4, 4, 3), torch.rand(1, 4, 4, 4)
    destination, source = nh.image_alpha_fix(rgb, rgba)
    assert destination is rgb and torch.equal(source, rgba[..., :3])
    destination, source = nh.image_alpha_fix(rgba, rgb)
    assert destination is rgba and source.shape[-1] == 4 and torch.all(source[..., 3] == 1.0)
