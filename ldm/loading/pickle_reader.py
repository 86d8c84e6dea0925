"""Torch pickles (``.ckpt``, ``.pt``) read without running anything the file names.

``torch.load(weights_only=True)`` refuses PyTorch Lightning checkpoints, such as the CompVis
latent-diffusion and Stable Diffusion 1.x ``.ckpt`` releases, because besides the weights they
name Lightning, omegaconf or numpy globals: the ``callbacks`` entry is keyed by
``pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint`` and holds numpy scalars
(``numpy.core.multiarray.scalar``, ``numpy.dtype``, ``_codecs.encode``), and ``hyper_parameters``
may hold ``argparse.Namespace``, Lightning's ``AttributeDict`` or omegaconf configs.
This reader takes such files and still runs no code from them:

* :meth:`RestrictedUnpickler.find_class` never imports anything. It hands out our own
  validating rebuild functions (tensors, Parameters, ``torch.Size``, bytes, sets, numpy scalars
  and arrays), plain values (torch dtypes, storage kinds), :class:`GlobalName` for names only
  used as values (``typing.Any``, ``builtins.dict``), and inert stand-in classes
  (:class:`InertObject`) for the data classes of Lightning, omegaconf and ``argparse.Namespace``:
  a stand-in only records what the pickle gives it. Every other global is refused by name.
* The unpickler is Python's pure-Python one with the opcodes that call into objects narrowed:
  REDUCE, NEWOBJ, INST and OBJ call only what ``find_class`` handed out; BUILD, SETITEM(S),
  APPEND(S) and ADDITEMS only touch plain containers, stand-ins and the fresh numpy objects our
  own functions made. (The C unpickler would call ``__setstate__``, ``__setitem__`` or ``append``
  of whatever object the stream points them at.)
* Storages come from the file, never from the pickle: zip archives (``torch.save`` since 1.6)
  are memory-mapped copy-on-write and each ``<archive>/data/<key>`` record is a view of the
  mapping, read when touched; legacy files are read after their pickles, as torch writes them.

Errors are :class:`PickleReadError`; refusals say ``refused: ...`` and name the global or opcode.
"""

from __future__ import annotations

import _compat_pickle
import io
import math
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ZIP_MAGIC = b"PK\x03\x04"

#: The first three pickles of a legacy (pre-zip) torch file: magic number, format version, and
#: then a dict of facts about the machine that wrote it.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

#: Packages whose classes stand in as :class:`InertObject`: the training bookkeeping that
#: Lightning checkpoints carry beside the weights.
STAND_IN_PACKAGES = ("pytorch_lightning", "lightning", "lightning_fabric", "omegaconf")
STAND_IN_CLASSES = frozenset({("argparse", "Namespace")})

#: Globals that hyper-parameters use only as values (omegaconf records ``typing.Any`` and
#: ``dict`` as key and element types); they become :class:`GlobalName` and are never called.
NAME_ONLY_MODULES = ("typing",)
NAME_ONLY_GLOBALS = frozenset(
    [("builtins", name) for name in ("dict", "list", "tuple", "int", "float", "str", "bytes",
                                     "bool", "object")]
    + [("numpy", "ndarray")])

#: ``torch.<Name>Storage`` as pickled for a tensor's storage (``UntypedStorage`` goes with
#: ``_rebuild_tensor_v3``, which names the tensor's dtype itself).
STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128, "UntypedStorage": torch.uint8,
}
STORAGE_MODULES = ("torch", "torch.storage", "torch.cuda")  # every storage is read onto the CPU

#: ``torch.<name>`` dtypes a pickle may name as values.
TORCH_DTYPES = {name: getattr(torch, name) for name in (
    "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8",
    "bool", "complex64", "complex128", "uint16", "uint32", "uint64",
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
) if isinstance(getattr(torch, name, None), torch.dtype)}

#: numpy kinds whose values are plain bytes: bool, signed, unsigned, float, complex, str, bytes.
NUMPY_DATA_KINDS = frozenset("biufcUS")


class PickleReadError(ValueError):
    """A torch pickle that cannot be read, or that asks for something this reader refuses."""


def _refuse(what: str) -> PickleReadError:
    return PickleReadError(f"refused: {what} (only tensors, plain containers and known "
                           "data classes are read from a pickle)")


class InertObject:
    """Stand-in for an instance of a data class the file names but that is never imported.

    It only records what the pickle hands it: constructor arguments, the BUILD state and any
    items set or appended. Subclasses are made per file and per global; ``origin`` is the
    dotted name the file used.
    """

    __slots__ = ("args", "kwargs", "state", "dict_items", "list_items")
    origin = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.state: Any = None
        self.dict_items: dict = {}
        self.list_items: list = []

    def __repr__(self) -> str:
        return f"<stand-in for {self.origin}>"


def _stand_in_class(origin: str) -> type[InertObject]:
    return type(origin.rpartition(".")[2] or "InertObject", (InertObject,),
                {"__slots__": (), "origin": origin, "__module__": __name__})


@dataclass(frozen=True)
class GlobalName:
    """A global the pickle uses as a value only (a type annotation, say); never resolved."""

    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class _StorageKind:
    """What ``torch.FloatStorage`` and its siblings mean in a persistent id: an element dtype."""

    dtype: torch.dtype


@dataclass(frozen=True)
class _StorageRef:
    """A storage read from the file; only our persistent_load makes these."""

    untyped: torch.UntypedStorage
    dtype: torch.dtype


# --- validation helpers ---------------------------------------------------------------------

def _is_int(value: Any) -> bool:
    return type(value) is int


def _int_sequence(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(_is_int(v) and v >= 0 for v in value):
        raise PickleReadError(f"{what} must be a sequence of non-negative integers, not {value!r}")
    return tuple(value)


def _no_hooks(hooks: Any) -> None:
    # torch writes an empty OrderedDict; hooks would be callables, which we never hand out.
    if type(hooks) not in (dict, OrderedDict) or hooks:
        raise _refuse("the pickle attaches backward hooks to a tensor")


# --- rebuild functions handed out by find_class ------------------------------------------------

def _make_tensor(storage: Any, dtype: Any, offset: Any, size: Any, stride: Any,
                 requires_grad: Any, hooks: Any, metadata: Any) -> torch.Tensor:
    if not isinstance(storage, _StorageRef):
        raise _refuse(f"the pickle builds a tensor on a {type(storage).__name__}, not a stored storage")
    if not isinstance(dtype, torch.dtype):
        raise PickleReadError(f"tensor dtype must be a torch dtype, not {dtype!r}")
    size, stride = _int_sequence(size, "tensor size"), _int_sequence(stride, "tensor stride")
    if not _is_int(offset) or offset < 0 or len(size) != len(stride):
        raise PickleReadError(f"malformed tensor: offset {offset!r}, size {size}, stride {stride}")
    if type(requires_grad) is not bool:
        raise PickleReadError(f"requires_grad must be a bool, not {requires_grad!r}")
    _no_hooks(hooks)
    if metadata:  # conj/neg bits of lazy views; checkpoints hold materialised tensors
        raise PickleReadError(f"tensor flags {metadata!r} are not supported")
    available = storage.untyped.nbytes() // dtype.itemsize
    needed = 0 if 0 in size else offset + 1 + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if needed > available:
        raise PickleReadError(f"tensor of size {size}, stride {stride} at offset {offset} needs "
                              f"{needed} elements; its storage has {available}")
    tensor = torch.empty(0, dtype=dtype).set_(storage.untyped, offset, size, stride)
    return tensor.requires_grad_() if requires_grad else tensor


def _rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any,
                       hooks: Any, metadata: Any = None) -> torch.Tensor:
    dtype = storage.dtype if isinstance(storage, _StorageRef) else None
    return _make_tensor(storage, dtype, offset, size, stride, requires_grad, hooks, metadata)


def _rebuild_tensor_v3(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any,
                       hooks: Any, dtype: Any, metadata: Any = None) -> torch.Tensor:
    return _make_tensor(storage, dtype, offset, size, stride, requires_grad, hooks, metadata)


def _rebuild_parameter(data: Any, requires_grad: Any, hooks: Any,
                       state: Any = None) -> torch.nn.Parameter:
    # ``state`` (from _rebuild_parameter_with_state) is Python attributes an owner set on the
    # Parameter; they are not weights, so they are left out rather than set.
    if type(data) is not torch.Tensor or type(requires_grad) is not bool:
        raise PickleReadError(f"malformed Parameter: {type(data).__name__}, requires_grad={requires_grad!r}")
    _no_hooks(hooks)
    return torch.nn.Parameter(data, requires_grad)


def _ordered_dict(*args: Any) -> OrderedDict:
    if args and (len(args) > 1 or type(args[0]) not in (list, tuple)):
        raise PickleReadError("OrderedDict takes at most one list of pairs")
    return OrderedDict(*args)


def _torch_size(dims: Any = ()) -> torch.Size:
    return torch.Size(_int_sequence(dims, "torch.Size"))


def _torch_device(kind: Any, index: Any = None) -> torch.device:
    if type(kind) is not str or not (index is None or _is_int(index)):
        raise PickleReadError(f"malformed torch.device({kind!r}, {index!r})")
    return torch.device(kind) if index is None else torch.device(kind, index)


def _latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    # Protocol 2 writes bytes as _codecs.encode(str, "latin1").
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise _refuse(f"the pickle encodes {type(text).__name__} with {encoding!r}")
    return text.encode("latin1")


def _collection(kind: type) -> Callable[..., Any]:
    def build(items: Any = ()) -> Any:
        if type(items) not in (list, tuple, bytes):
            raise PickleReadError(f"{kind.__name__} takes a list, not a {type(items).__name__}")
        return kind(items)
    return build


def _complex(real: Any = 0.0, imag: Any = 0.0) -> complex:
    if not all(type(part) in (int, float) for part in (real, imag)):
        raise PickleReadError(f"complex takes numbers, not {real!r}, {imag!r}")
    return complex(real, imag)


def _numpy_dtype(spec: Any, align: Any = False, copy: Any = True) -> Any:
    import numpy as np

    if type(spec) is not str:
        raise PickleReadError(f"numpy dtype spec must be a string, not {spec!r}")
    dtype = np.dtype(spec)
    if dtype.kind not in NUMPY_DATA_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise _refuse(f"the pickle makes a numpy {spec!r} dtype, which holds more than plain data")
    # A fresh copy: BUILD then sets its byte order, never that of numpy's shared singleton.
    return np.dtype(spec, copy=True)


def _numpy_scalar(dtype: Any, data: Any) -> Any:
    import numpy as np

    if not isinstance(dtype, np.dtype) or dtype.kind not in NUMPY_DATA_KINDS:
        raise _refuse(f"the pickle makes a numpy scalar of {dtype!r}")
    if type(data) is not bytes or len(data) != dtype.itemsize:
        raise PickleReadError(f"numpy {dtype} scalar needs {dtype.itemsize} bytes of data")
    return np.frombuffer(data, dtype=dtype)[0].copy()


def _numpy_empty_array(subtype: Any, shape: Any, typecode: Any) -> Any:
    import numpy as np

    # numpy pickles an array as _reconstruct(ndarray, (0,), b"b") followed by BUILD with the data.
    if type(subtype) is not GlobalName or subtype != GlobalName("numpy", "ndarray"):
        raise _refuse(f"the pickle reconstructs a {subtype!r} as a numpy array")
    return np.empty((0,), dtype=np.uint8)


SAFE_CALLABLES: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch", "Size"): _torch_size,
    ("torch", "device"): _torch_device,
    ("_codecs", "encode"): _latin1_bytes,
    ("builtins", "set"): _collection(set),
    ("builtins", "frozenset"): _collection(frozenset),
    ("builtins", "bytearray"): _collection(bytearray),
    ("builtins", "complex"): _complex,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,  # numpy 1.x
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,  # numpy 2.x
    ("numpy.core.multiarray", "_reconstruct"): _numpy_empty_array,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_empty_array,
}
_SAFE_CALLABLE_IDS = frozenset(id(function) for function in SAFE_CALLABLES.values())


# --- BUILD on numpy objects ------------------------------------------------------------------

def _build_numpy(inst: Any, state: Any, np: Any) -> None:
    """BUILD on a dtype or an empty array that our own functions made, with checked state."""
    if isinstance(inst, np.dtype):
        if type(state) is not tuple or len(state) < 2 or type(state[1]) is not str \
                or state[1] not in ("<", ">", "|"):
            raise PickleReadError(f"malformed numpy dtype state {state!r}")
        # The state numpy itself writes for this dtype in that byte order; nothing else is set.
        expected = inst.newbyteorder(state[1]).__reduce__()[2]
        if len(state) != len(expected) \
                or not all(type(a) is type(b) and a == b for a, b in zip(state, expected, strict=True)):
            raise PickleReadError(f"numpy dtype state {state!r} is not that of a plain {inst}")
        inst.__setstate__(expected)
        return
    if type(state) is not tuple or len(state) != 5:
        raise PickleReadError("malformed numpy array state")
    version, shape, dtype, fortran, raw = state
    shape = _int_sequence(shape, "numpy array shape")
    if not isinstance(dtype, np.dtype) or dtype.kind not in NUMPY_DATA_KINDS or dtype.hasobject:
        raise _refuse(f"the pickle fills a numpy array of {dtype!r}")
    if not _is_int(version) or type(fortran) is not bool or type(raw) is not bytes \
            or len(raw) != math.prod(shape) * dtype.itemsize:
        raise PickleReadError(f"numpy array of shape {shape} {dtype} has malformed data")
    inst.__setstate__((version, shape, dtype, fortran, raw))


def _set_attributes(container: OrderedDict, state: Any) -> None:
    # torch's state_dict() is an OrderedDict carrying a ``_metadata`` attribute (key versions).
    if type(state) is not dict or not all(type(k) is str and not k.startswith("__") for k in state):
        raise _refuse("the pickle sets odd attributes on an OrderedDict")
    vars(container).update(state)


# --- the unpickler ---------------------------------------------------------------------------

class RestrictedUnpickler(pickle._Unpickler):
    """Unpickler whose globals come from the allowlists above and whose calls are checked.

    ``storage_loader`` turns a persistent id (torch's ``("storage", kind, key, location,
    numel[, view])`` tuples) into a :class:`_StorageRef`; without one, persistent ids are refused.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: Any, storage_loader: Callable[[Any], _StorageRef] | None = None) -> None:
        super().__init__(file)
        self._storage_loader = storage_loader
        self._stand_ins: dict[str, type[InertObject]] = {}

    @property
    def stand_ins(self) -> tuple[str, ...]:
        """Dotted names of the data classes that got inert stand-ins, sorted."""
        return tuple(sorted(self._stand_ins))

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3:  # Python 2 names, which protocol 2 still writes (__builtin__.long)
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        key = (module, name)
        if key in SAFE_CALLABLES:
            return SAFE_CALLABLES[key]
        if module in STORAGE_MODULES and name in STORAGE_DTYPES:
            return _StorageKind(STORAGE_DTYPES[name])
        if module == "torch" and name in TORCH_DTYPES:
            return TORCH_DTYPES[name]
        if key in NAME_ONLY_GLOBALS or module in NAME_ONLY_MODULES:
            return GlobalName(module, name)
        if key in STAND_IN_CLASSES or module.split(".", 1)[0] in STAND_IN_PACKAGES:
            origin = f"{module}.{name}"
            if origin not in self._stand_ins:
                self._stand_ins[origin] = _stand_in_class(origin)
            return self._stand_ins[origin]
        raise _refuse(f"the pickle calls {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if self._storage_loader is None:
            raise _refuse("a persistent id outside the tensor data pickle")
        return self._storage_loader(pid)

    # Every opcode that calls a callable goes through here.
    def _call(self, func: Any, args: Any, kwargs: Any) -> Any:
        if type(args) is not tuple or type(kwargs) is not dict:
            raise PickleReadError("malformed call in the pickle")
        if id(func) in _SAFE_CALLABLE_IDS or _is_stand_in(func):
            return func(*args, **kwargs)
        raise _refuse(f"the pickle calls {_describe(func)}")

    def load_reduce(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args, {})
    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._construct(cls, args, {}))
    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._construct(cls, args, kwargs))
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def _construct(self, cls: Any, args: Any, kwargs: Any) -> Any:
        # NEWOBJ is ``cls.__new__(cls, ...)``: only stand-ins may be made that way.
        if not _is_stand_in(cls):
            raise _refuse(f"the pickle creates {_describe(cls)} with NEWOBJ")
        return self._call(cls, args, kwargs)

    def _instantiate(self, klass: Any, args: list) -> None:  # INST and OBJ (protocols 0 and 1)
        self.append(self._call(klass, tuple(args), {}))

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        np = sys.modules.get("numpy")  # numpy objects exist only if our functions imported it
        if isinstance(inst, InertObject):
            inst.state = state
        elif type(inst) is OrderedDict:
            _set_attributes(inst, state)
        elif np is not None and (isinstance(inst, np.dtype) or type(inst) is np.ndarray):
            _build_numpy(inst, state, np)
        else:
            raise _refuse(f"the pickle sets the state of {_describe(inst)}")
    dispatch[pickle.BUILD[0]] = load_build

    def load_append(self) -> None:
        value = self.stack.pop()
        self._list_target("APPEND").append(value)
    dispatch[pickle.APPEND[0]] = load_append

    def load_appends(self) -> None:
        items = self.pop_mark()
        self._list_target("APPENDS").extend(items)
    dispatch[pickle.APPENDS[0]] = load_appends

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._dict_target("SETITEM")[key] = value
    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self._dict_target("SETITEMS")
        for index in range(0, len(items), 2):
            target[items[index]] = items[index + 1]
    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_additems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not set:
            raise _refuse(f"the pickle adds items to {_describe(target)}")
        target.update(items)
    dispatch[pickle.ADDITEMS[0]] = load_additems

    def _list_target(self, opcode: str) -> list:
        target = self.stack[-1]
        if type(target) is list:
            return target
        if isinstance(target, InertObject):
            return target.list_items
        raise _refuse(f"the pickle's {opcode} targets {_describe(target)}")

    def _dict_target(self, opcode: str) -> dict:
        target = self.stack[-1]
        if type(target) in (dict, OrderedDict):
            return target
        if isinstance(target, InertObject):
            return target.dict_items
        raise _refuse(f"the pickle's {opcode} targets {_describe(target)}")


def _is_stand_in(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, InertObject) and obj is not InertObject


def _describe(obj: Any) -> str:
    if isinstance(obj, GlobalName):
        return str(obj)
    if id(obj) in _SAFE_CALLABLE_IDS:
        return next(f"{module}.{name}" for (module, name), function in SAFE_CALLABLES.items()
                    if function is obj)
    if isinstance(obj, torch.dtype):
        return f"the dtype {obj}"
    if isinstance(obj, _StorageKind):
        return f"a {obj.dtype} storage kind"
    if isinstance(obj, type):
        return f"the class {getattr(obj, 'origin', obj.__qualname__)}"
    return f"a {type(obj).__name__}"


# --- file formats ----------------------------------------------------------------------------

@dataclass(frozen=True)
class PickleContents:
    """What a torch file holds, and the data classes that were read as inert stand-ins."""

    value: Any
    stand_ins: tuple[str, ...]


def _storage_id(pid: Any, length: int) -> tuple[torch.dtype, str, int, Any]:
    """``(dtype, key, numel, view)`` of torch's ``("storage", kind, key, location, numel[, view])``."""
    if type(pid) is not tuple or len(pid) != length or pid[0] not in ("storage", b"storage"):
        raise _refuse(f"the pickle's persistent id {pid!r} is not a tensor storage")
    _, kind, key, location, numel, *view = pid
    if not isinstance(kind, _StorageKind) or type(key) is not str or not _is_int(numel) or numel < 0:
        raise PickleReadError(f"malformed storage id {pid!r}")
    if type(location) not in (str, bytes):  # a device name; everything is read onto the CPU
        raise PickleReadError(f"malformed storage location {location!r}")
    return kind.dtype, key, numel, (view[0] if view else None)


class _ZipStorages:
    """Storages of a torch zip archive: views of one copy-on-write map of the whole file."""

    def __init__(self, path: Path, handle: io.BufferedReader, records: dict[str, zipfile.ZipInfo],
                 prefix: str) -> None:
        self._path, self._handle, self._records, self._prefix = path, handle, records, prefix
        self._file_size = path.stat().st_size
        self._mapped: torch.UntypedStorage | None = None
        self._loaded: dict[str, torch.UntypedStorage] = {}

    def load(self, pid: Any) -> _StorageRef:
        dtype, key, numel, _ = _storage_id(pid, 5)
        if key not in self._loaded:
            self._loaded[key] = self._record(key, numel * dtype.itemsize)
        untyped = self._loaded[key]
        if untyped.nbytes() != numel * dtype.itemsize:
            raise PickleReadError(f"storage {key!r} is used with {numel} elements of {dtype} "
                                  f"but holds {untyped.nbytes()} bytes")
        return _StorageRef(untyped, dtype)

    def _record(self, key: str, nbytes: int) -> torch.UntypedStorage:
        info = self._records.get(f"{self._prefix}data/{key}")
        if info is None:
            raise PickleReadError(f"storage record data/{key} is missing from the archive")
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise PickleReadError(f"storage record data/{key} is compressed or encrypted; "
                                  "torch writes them stored")
        if info.file_size != nbytes:
            raise PickleReadError(f"storage record data/{key} has {info.file_size} bytes, "
                                  f"the pickle expects {nbytes}")
        self._handle.seek(info.header_offset)
        header = self._handle.read(30)
        if len(header) != 30 or not header.startswith(ZIP_MAGIC):
            raise PickleReadError(f"storage record data/{key} has a corrupt zip header")
        name_len, extra_len = struct.unpack_from("<HH", header, 26)
        start = info.header_offset + 30 + name_len + extra_len
        if start + nbytes > self._file_size:
            raise PickleReadError(f"storage record data/{key} lies past the end of the file")
        if self._mapped is None:
            # MAP_PRIVATE: pages are read when a tensor touches them, and writes stay in memory.
            self._mapped = torch.UntypedStorage.from_file(str(self._path), shared=False,
                                                          nbytes=self._file_size)
        return self._mapped[start:start + nbytes]


def _read_zip(path: Path) -> PickleContents:
    with open(path, "rb") as handle, zipfile.ZipFile(handle) as archive:
        records = {info.filename: info for info in archive.infolist()}
        pickles = [name for name in records if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise PickleReadError(f"expected one <archive>/data.pkl record, found {len(pickles)}")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in records and archive.read(f"{prefix}byteorder") != b"little":
            raise PickleReadError("the archive was written on a big-endian machine; not supported")
        data_pkl = archive.read(pickles[0])
        storages = _ZipStorages(path, handle, records, prefix)
        unpickler = RestrictedUnpickler(io.BytesIO(data_pkl), storages.load)
        return PickleContents(unpickler.load(), unpickler.stand_ins)


class _LegacyStorages:
    """Storages of a legacy torch file: allocated while unpickling, filled from the bytes that
    follow the pickles (per storage: an int64 element count, then the raw elements)."""

    def __init__(self, budget: int) -> None:
        self._budget = budget  # the storages cannot hold more bytes than the file has
        self._roots: dict[str, tuple[bytearray, torch.dtype, int]] = {}

    def load(self, pid: Any) -> _StorageRef:
        dtype, key, numel, view = _storage_id(pid, 6)
        if key not in self._roots:
            nbytes = numel * dtype.itemsize
            if nbytes > self._budget:
                raise PickleReadError(f"storage {key!r} claims {nbytes} bytes, more than the file holds")
            self._budget -= nbytes
            self._roots[key] = (bytearray(nbytes), dtype, numel)
        buffer, root_dtype, _ = self._roots[key]
        if root_dtype != dtype:
            raise PickleReadError(f"storage {key!r} is used both as {root_dtype} and {dtype}")
        untyped = (torch.frombuffer(buffer, dtype=torch.uint8).untyped_storage() if buffer
                   else torch.UntypedStorage(0))
        if view is not None:  # (view key, offset, size) in elements: pre-1.0 storage views
            if type(view) is not tuple or len(view) != 3 or not all(_is_int(v) and v >= 0 for v in view[1:]):
                raise PickleReadError(f"malformed storage view {view!r}")
            begin, end = view[1] * dtype.itemsize, (view[1] + view[2]) * dtype.itemsize
            if end > len(buffer):
                raise PickleReadError(f"storage view {view!r} lies outside storage {key!r}")
            untyped = untyped[begin:end]
        return _StorageRef(untyped, dtype)

    def fill(self, handle: io.BufferedReader, keys: Any) -> None:
        if type(keys) is not list or sorted(keys, key=str) != sorted(self._roots) or len(set(keys)) != len(keys):
            raise PickleReadError("the storage key list does not match the storages the pickle uses")
        for key in keys:
            buffer, dtype, numel = self._roots[key]
            count_bytes = handle.read(8)
            if len(count_bytes) != 8 or struct.unpack("<q", count_bytes)[0] != numel:
                raise PickleReadError(f"storage {key!r}: the file does not hold its {numel} elements")
            if handle.readinto(buffer) != len(buffer):
                raise PickleReadError(f"storage {key!r} is truncated")


def _read_legacy(path: Path) -> PickleContents:
    with open(path, "rb") as handle:
        if RestrictedUnpickler(handle).load() != LEGACY_MAGIC:
            raise PickleReadError("not a torch file (wrong magic number)")
        if RestrictedUnpickler(handle).load() != LEGACY_PROTOCOL:
            raise PickleReadError("unknown legacy torch format version")
        sys_info = RestrictedUnpickler(handle).load()
        if type(sys_info) is not dict or sys_info.get("little_endian") is not True:
            raise PickleReadError("the file was written on a big-endian machine; not supported")
        storages = _LegacyStorages(budget=path.stat().st_size)
        unpickler = RestrictedUnpickler(handle, storages.load)
        value = unpickler.load()
        storages.fill(handle, RestrictedUnpickler(handle).load())
        return PickleContents(value, unpickler.stand_ins)


def read_torch_file(path: str | Path) -> PickleContents:
    """The contents of a ``torch.save`` file (zip archive or legacy pickle), read without
    running any code from it. Raises :class:`PickleReadError`."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            zipped = handle.read(4) == ZIP_MAGIC
        return _read_zip(path) if zipped else _read_legacy(path)
    except PickleReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed file is an error message, not a crash
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise PickleReadError(f"cannot read the pickle: {type(exc).__name__}: {detail}") from None
