"""Safe loading of single-file checkpoints: safetensors memory-mapped, pickles only the safe way.

The format is read from the file's first bytes, never from its name:

* safetensors: an 8-byte little-endian header length ``n``, then ``n`` bytes of JSON starting with
  ``{`` (``{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``),
  then the raw tensor bytes. We check the header ourselves before handing the file to
  ``safetensors.safe_open``, which maps it copy-on-write: tensors are views of the mapping, pages
  are read when touched, nothing is upcast and the file is never written.
* torch zip archives (``PK\\x03\\x04``, ``torch.save`` since 1.6) and legacy pickles (``\\x80`` +
  protocol byte): through ``torch.load(weights_only=True)``, memory-mapped for zip archives. When
  that refuses a global it does not know (every PyTorch Lightning ``.ckpt`` names some), the file
  is read again by :mod:`ldm.loading.pickle_reader`, which runs nothing the file names either:
  Lightning/omegaconf data become inert stand-ins, any other global is refused by name.
  There is no fallback to an unrestricted unpickler, ever.

Every failure is a :class:`CheckpointError` whose message names the file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import torch

from ldm.loading.pickle_reader import PickleReadError, read_torch_file

log = logging.getLogger(__name__)

#: safetensors refuses headers above 100 MB; a real checkpoint's header is a few hundred KB.
MAX_HEADER_BYTES = 100_000_000

#: Bytes per element of each safetensors dtype we can turn into a torch tensor.
SAFETENSORS_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}

ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = 0x80


class CheckpointError(ValueError):
    """A model file that cannot be loaded safely (corrupt, truncated, unsafe or unknown format)."""


def sniff_format(path: str | os.PathLike) -> str:
    """``"safetensors"``, ``"torch_zip"`` or ``"torch_pickle"``, read from the file's content."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if size < 8:
        raise CheckpointError(f"{path}: file is {size} bytes long, too short to be a checkpoint")
    if head.startswith(ZIP_MAGIC):
        return "torch_zip"
    if head[0] == PICKLE_PROTO and 2 <= head[1] <= 5:
        return "torch_pickle"
    if len(head) == 9 and head[8:9] == b"{":
        return "safetensors"
    raise CheckpointError(f"{path}: not a safetensors file, torch archive or pickle "
                          f"(first bytes {head[:8].hex()})")


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict, dict]:
    """The checked header of a safetensors file: ``(tensor entries, metadata)``.

    Refuses a header length larger than the file or than :data:`MAX_HEADER_BYTES`, JSON that is
    not an object, unknown dtypes, and offsets that disagree with shapes or leave the file.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        (header_len,) = struct.unpack("<Q", handle.read(8))
        if header_len > MAX_HEADER_BYTES or header_len > size - 8:
            raise CheckpointError(
                f"{path}: safetensors header claims {header_len} bytes but the file has "
                f"{size} bytes (truncated or not a safetensors file)")
        raw = handle.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: safetensors header is not a JSON object")

    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: safetensors __metadata__ must map strings to strings")
    data_len = size - 8 - header_len
    for name, entry in header.items():
        _check_entry(path, name, entry, data_len)
    return header, metadata


def _check_entry(path: Path, name: str, entry: Any, data_len: int) -> None:
    if not isinstance(entry, dict):
        raise CheckpointError(f"{path}: tensor {name!r} has a malformed header entry")
    dtype = entry.get("dtype")
    if dtype not in SAFETENSORS_DTYPE_BYTES:
        raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype {dtype!r}")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise CheckpointError(f"{path}: tensor {name!r} has a malformed shape {shape!r}")
    offsets = entry.get("data_offsets")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)):
        raise CheckpointError(f"{path}: tensor {name!r} has malformed data_offsets {offsets!r}")
    begin, end = offsets
    expected = math.prod(shape) * SAFETENSORS_DTYPE_BYTES[dtype]
    if not 0 <= begin <= end <= data_len:
        raise CheckpointError(f"{path}: tensor {name!r} lies outside the file "
                              f"(bytes {begin}..{end} of {data_len}); the file may be truncated")
    if end - begin != expected:
        raise CheckpointError(f"{path}: tensor {name!r} of shape {shape} {dtype} needs {expected} "
                              f"bytes, the header gives {end - begin}")


def _load_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import SafetensorError, safe_open

    header, metadata = read_safetensors_header(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            tensors = {name: handle.get_tensor(name) for name in header}
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read safetensors data ({exc})") from None
    return tensors, dict(metadata)


def _torch_load(path: Path, kind: str) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=(kind == "torch_zip"))
    except pickle.UnpicklingError as exc:
        # weights_only refuses globals outside torch's own list; Lightning checkpoints name some
        # (callbacks, hyper-parameters). The restricted reader takes those as inert data.
        log.debug("%s: torch.load(weights_only=True) refused it (%s); reading it restricted",
                  path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return _read_restricted(path)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a refusal, never a crash
        raise CheckpointError(
            f"{path}: refused to load with torch.load(weights_only=True): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None


def _read_restricted(path: Path) -> Any:
    try:
        contents = read_torch_file(path)
    except PickleReadError as exc:
        raise CheckpointError(f"{path}: refused by torch.load(weights_only=True) and by the "
                              f"restricted reader: {exc}") from None
    if contents.stand_ins:
        log.info("%s: read with the restricted unpickler; inert stand-ins for %s",
                 path, ", ".join(contents.stand_ins))
    return contents.value


def _load_torch(path: Path, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    loaded = _torch_load(path, kind)
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{path}: holds a {type(loaded).__name__}, not a state dict")
    # Lightning-era .ckpt files nest the weights under "state_dict".
    inner = loaded.get("state_dict")
    weights = inner if isinstance(inner, dict) else loaded
    tensors = {k: v for k, v in weights.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path}: contains no tensors")
    metadata = {k: str(v) for k, v in loaded.items()
                if isinstance(k, str) and isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    return tensors, metadata


def _sniffed(path: str | os.PathLike) -> tuple[Path, str]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    kind = sniff_format(path)
    if kind != "safetensors" and path.suffix.lower() in (".safetensors", ".sft"):
        # A pickle wearing a safetensors name is a trap: refuse before any unpickling.
        raise CheckpointError(f"{path}: named .safetensors but holds a torch pickle; refusing it")
    return path, kind


def load_object(path: str | os.PathLike) -> Any:
    """The raw contents of a weights file, for formats that nest (textual-inversion ``.pt``):
    the tensor dict of a safetensors file, else what ``torch.load(weights_only=True)`` or, for
    files it refuses, the restricted reader gives (data classes there are ``InertObject``)."""
    path, kind = _sniffed(path)
    if kind == "safetensors":
        return _load_safetensors(path)[0]
    return _torch_load(path, kind)


def load_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state_dict, metadata)`` of a single-file checkpoint; raises :class:`CheckpointError`.

    Tensors keep the dtype they have in the file (fp16 stays fp16). For safetensors the tensors
    are copy-on-write views of a memory map, so loading costs address space, not memory, until
    the weights are used; ``metadata`` is the header's ``__metadata__`` (strings).
    """
    path, kind = _sniffed(path)
    if kind == "safetensors":
        return _load_safetensors(path)
    return _load_torch(path, kind)


def save_state_dict(path: str | os.PathLike, state_dict: dict[str, torch.Tensor],
                    metadata: dict[str, str] | None = None) -> None:
    """Write ``state_dict`` as a safetensors file (tensors made contiguous, on the CPU)."""
    from safetensors.torch import save_file

    tensors = {}
    seen_storage: set[int] = set()
    for key, value in state_dict.items():
        value = value.detach().to("cpu").contiguous()
        pointer = value.untyped_storage().data_ptr()
        if pointer in seen_storage:  # tied or viewed weights: safetensors wants one owner each
            value = value.clone()
        seen_storage.add(value.untyped_storage().data_ptr())
        tensors[key] = value
    save_file(tensors, str(path), metadata=dict(metadata or {}))
