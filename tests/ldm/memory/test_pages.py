"""ldm.memory.pages: file pages of memory-mapped weights are dropped, anonymous memory never
(Linux: madvise over the ranges /proc/self/maps lists as file mappings)."""

from __future__ import annotations

import torch

from ldm.loading.checkpoint import load_state_dict, save_state_dict
from ldm.memory import MemoryManager, MemoryOptions, Placement, VramMode
from ldm.memory.pages import PAGE, file_mappings, release_file_pages
from tests.ldm.memory.conftest import tiny_unet_handle, unet_inputs


def _mapped(tmp_path, **tensors):
    path = tmp_path / "weights.safetensors"
    save_state_dict(path, tensors)
    return load_state_dict(path)[0]


def test_dropped_pages_read_back_the_same_bytes(tmp_path):
    big = torch.randn(64, PAGE)  # many pages
    loaded = _mapped(tmp_path, big=big)["big"]
    assert torch.equal(loaded, big)  # pages now resident
    released = release_file_pages([loaded])
    assert released >= big.numel() * 4 - 2 * PAGE
    assert torch.equal(loaded, big)  # faulted in again from the file


def test_anonymous_memory_is_never_touched():
    anonymous = torch.randn(64, PAGE)
    before = anonymous.clone()
    assert release_file_pages([anonymous]) == 0
    assert torch.equal(anonymous, before)
    start = anonymous.data_ptr()
    assert not any(lo <= start < hi for lo, hi in file_mappings())


def test_a_cpu_placement_releases_the_originals_it_copied(tmp_path):
    handle = tiny_unet_handle()
    stored = _mapped(tmp_path, **{k: v.contiguous() for k, v in handle.unet.state_dict().items()})
    handle.unet.load_state_dict(stored, assign=True)
    x, t, context = unet_inputs(handle.config)
    with torch.no_grad():
        reference = handle.unet(x, t, context)
    manager = MemoryManager(MemoryOptions(mode=VramMode.CPU))
    with manager.use(handle.unet, Placement("cpu", torch.float32)) as entry, torch.no_grad():
        assert entry.release_copied_originals() > 0
        out = handle.unet(x, t, context)
    manager.unload_all()
    with torch.no_grad():
        assert torch.equal(handle.unet(x, t, context), reference)  # originals read back from the file
    torch.testing.assert_close(out, reference, atol=1e-2, rtol=1e-2)
