"""ldm.loading.checkpoint: content-sniffed, safe, memory-mapped loading with clear refusals."""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import save_file

from ldm.loading.checkpoint import CheckpointError, load_state_dict, save_state_dict, sniff_format


def _weights():
    return {"a.weight": torch.randn(4, 3, dtype=torch.float16),
            "b.bias": torch.arange(5, dtype=torch.float32),
            "c": torch.ones(2, 2, dtype=torch.bfloat16)}


def test_safetensors_keeps_dtype_and_metadata(tmp_path):
    weights = _weights()
    path = tmp_path / "m.safetensors"
    save_state_dict(path, weights, {"modelspec.title": "tiny"})
    loaded, metadata = load_state_dict(path)
    assert metadata == {"modelspec.title": "tiny"}
    assert set(loaded) == set(weights)
    for key, tensor in weights.items():
        assert loaded[key].dtype == tensor.dtype  # fp16 stays fp16: no upcast at load
        assert torch.equal(loaded[key], tensor)


def test_writing_a_loaded_tensor_never_touches_the_file(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"w": torch.zeros(8)}, str(path))
    loaded, _ = load_state_dict(path)
    loaded["w"].add_(1)
    again, _ = load_state_dict(path)
    assert torch.equal(again["w"], torch.zeros(8))


def test_format_comes_from_content_not_name(tmp_path):
    safetensors_named_ckpt = tmp_path / "really_safetensors.ckpt"
    save_file({"w": torch.ones(3)}, str(safetensors_named_ckpt))
    assert sniff_format(safetensors_named_ckpt) == "safetensors"
    loaded, _ = load_state_dict(safetensors_named_ckpt)
    assert torch.equal(loaded["w"], torch.ones(3))


def test_torch_zip_and_legacy_pickle_load_with_nested_state_dict(tmp_path):
    weights = _weights()
    zipped = tmp_path / "model.ckpt"
    torch.save({"state_dict": weights, "global_step": 875000}, zipped)
    legacy = tmp_path / "model.pt"
    torch.save(weights, legacy, _use_new_zipfile_serialization=False)
    assert sniff_format(zipped) == "torch_zip"
    assert sniff_format(legacy) == "torch_pickle"
    for path in (zipped, legacy):
        loaded, metadata = load_state_dict(path)
        assert set(loaded) == set(weights)
        assert all(loaded[k].dtype == weights[k].dtype for k in weights)
    assert load_state_dict(zipped)[1]["global_step"] == "875000"


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/weft_pwned_by_pickle",))


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = "/tmp/weft_pwned_by_pickle"
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / "evil.ckpt"
    torch.save({"w": torch.ones(2), "payload": _Exploit()}, path)
    with pytest.raises(CheckpointError, match="evil.ckpt"):
        load_state_dict(path)
    assert not os.path.exists(marker)


def test_pickle_renamed_safetensors_is_refused_before_torch_load(tmp_path, monkeypatch):
    path = tmp_path / "looks_safe.safetensors"
    torch.save({"w": torch.ones(2)}, path)

    def forbidden(*args, **kwargs):
        raise AssertionError("torch.load must not be called on a renamed pickle")

    monkeypatch.setattr(torch, "load", forbidden)
    with pytest.raises(CheckpointError, match="looks_safe.safetensors.*pickle"):
        load_state_dict(path)

    raw_pickle = tmp_path / "raw.safetensors"
    raw_pickle.write_bytes(pickle.dumps({"w": [1, 2, 3]}, protocol=4))
    with pytest.raises(CheckpointError, match="raw.safetensors"):
        load_state_dict(raw_pickle)


def _safetensors_bytes(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize("name, payload, message", [
    ("empty.safetensors", b"", "too short"),
    ("garbage.safetensors", b"\x13\x37" * 64, "not a safetensors"),
    ("huge_header.safetensors", struct.pack("<Q", 2**40) + b"{" + b" " * 100, "claims"),
    ("bad_json.safetensors", struct.pack("<Q", 5) + b"{abcd", "not valid JSON"),
    ("bad_dtype.safetensors",
     _safetensors_bytes({"w": {"dtype": "Q99", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8),
     "unsupported dtype"),
    ("bad_offsets.safetensors",
     _safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 16),
     "needs 16 bytes"),
    ("truncated.safetensors",
     _safetensors_bytes({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}, b"\0" * 100),
     "truncated"),
])
def test_corrupt_files_raise_clear_errors(tmp_path, name, payload, message):
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(CheckpointError) as info:
        load_state_dict(path)
    assert name in str(info.value) and message in str(info.value)


def test_truncated_real_safetensors_and_torch_files(tmp_path):
    good = tmp_path / "good.safetensors"
    save_file({"w": torch.randn(256)}, str(good))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_state_dict(cut)
    zipped = tmp_path / "good.ckpt"
    torch.save({"w": torch.randn(4096)}, zipped)
    cut_zip = tmp_path / "cut.ckpt"
    cut_zip.write_bytes(zipped.read_bytes()[: zipped.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cut.ckpt"):
        load_state_dict(cut_zip)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="nothing.safetensors"):
        load_state_dict(tmp_path / "nothing.safetensors")


def test_peak_rss_while_loading_stays_near_file_size(tmp_path):
    """Load a ~100 MB file in a fresh process and touch every weight: peak RSS growth <= 1.3x."""
    path = tmp_path / "big.safetensors"
    save_file({f"layer{i}.weight": torch.randn(1024, 1024) for i in range(25)}, str(path))
    size = path.stat().st_size
    # VmHWM is the peak RSS of this process image; getrusage's ru_maxrss would also count the
    # forked parent (Linux carries it across exec).
    script = textwrap.dedent(f"""
        import torch
        from ldm.loading.checkpoint import load_state_dict
        def status(field):
            for line in open("/proc/self/status"):
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        base = status("VmRSS")
        state_dict, _ = load_state_dict({str(path)!r})
        total = sum(float(t.sum()) for t in state_dict.values())
        print(status("VmHWM") - base)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=os.getcwd(), timeout=120)
    assert result.returncode == 0, result.stderr
    growth = int(result.stdout.strip().splitlines()[-1])
    assert growth <= 1.3 * size, f"peak RSS grew by {growth / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"
