"""torchvision is part of Weft's environment (docs/node-packs.md, "torchvision"): node packs and
spandrel import it, so it has to import beside Weft's torch and its compiled ops have to run on
the CPU. Guards against the pairing that fails: PyPI's torchvision with the local CPU-only torch
wheel, whose ``_C.so`` needs CUDA torch's libraries ("operator torchvision::nms does not exist")."""

from __future__ import annotations

from importlib import metadata

import pytest
import torch
from packaging.requirements import Requirement


@pytest.fixture(scope="module")
def torchvision():
    """Imported here, not at module level, so a broken install fails these tests, not collection."""
    import torchvision
    import torchvision.transforms.v2
    return torchvision


def test_torchvision_is_the_build_paired_with_torch(torchvision):
    # Each torchvision release is built against one torch release and says so in its metadata
    # (0.28.0 requires torch==2.13.0); the installed torch must satisfy that.
    pins = [Requirement(line) for line in metadata.requires("torchvision") or []]
    torch_pin = next(pin for pin in pins if pin.name == "torch" and pin.marker is None)
    assert torch_pin.specifier.contains(torch.__version__.split("+")[0]), (torch_pin, torch.__version__)
    assert torchvision.extension._has_ops(), "torchvision's C++ ops (_C.so) did not load"


def test_nms_runs_on_cpu_tensors(torchvision):
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    keep = torchvision.ops.nms(boxes, scores, iou_threshold=0.5)
    assert keep.device.type == "cpu"
    assert keep.tolist() == [0, 2]  # box 1 overlaps box 0 (IoU 0.68) and is dropped
    batched = torchvision.ops.batched_nms(boxes, scores, torch.tensor([0, 1, 0]), iou_threshold=0.5)
    assert sorted(batched.tolist()) == [0, 1, 2]  # different classes never suppress each other


def test_roi_align_uses_the_compiled_kernel(torchvision):
    features = torch.arange(16.0).reshape(1, 1, 4, 4)
    rois = [torch.tensor([[0.0, 0.0, 3.0, 3.0]])]
    out = torchvision.ops.roi_align(features, rois, output_size=2)
    torch.testing.assert_close(out.flatten(), torch.tensor([3.75, 5.25, 9.75, 11.25]))
    # roi_align has a pure-Python fallback, so its result alone proves little: _C.so must have
    # registered real CPU kernels.
    for op in ("nms", "roi_align", "roi_pool", "deform_conv2d", "ps_roi_align"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"torchvision::{op}", "CPU"), op


def test_transforms_v2_on_an_image_batch(torchvision):
    image = torch.rand(2, 3, 32, 48)
    v2 = torchvision.transforms.v2
    out = v2.Compose([v2.Resize(16, antialias=True), v2.CenterCrop(16)])(image)
    assert out.shape == (2, 3, 16, 16)


def test_io_png_round_trip(torchvision):
    pixels = (torch.rand(3, 8, 8) * 255).to(torch.uint8)
    encoded = torchvision.io.encode_png(pixels)
    assert torch.equal(torchvision.io.decode_png(encoded), pixels)

