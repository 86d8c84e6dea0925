"""ldm.loading.pickle_reader: PyTorch Lightning .ckpt files read without running anything they name.

The checkpoints are written here with torch.save, so the pickles name their globals exactly as
real Lightning files do (the Lightning and omegaconf classes are stand-ins registered under the
real module names while saving; neither package is installed, and nothing imports them on load).
"""

from __future__ import annotations

import argparse
import builtins
import io
import logging
import os
import pathlib
import pickle
import subprocess
import sys
import types
import typing
from collections import OrderedDict

import numpy as np
import pytest
import torch

from ldm.loading.checkpoint import CheckpointError, load_state_dict
from ldm.loading.pickle_reader import GlobalName, InertObject, PickleReadError, RestrictedUnpickler, read_torch_file

FORMATS = pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])


def _save(obj, path, zipped: bool, protocol: int = 2):
    torch.save(obj, path, _use_new_zipfile_serialization=zipped, pickle_protocol=protocol)
    return path


def _register(monkeypatch, dotted: str, name: str, obj) -> None:
    """Make ``obj`` importable as ``dotted.name`` (and its parent packages), so pickle names it
    by that module path while saving."""
    obj.__module__, obj.__qualname__ = dotted, name
    parts = dotted.split(".")
    for depth in range(1, len(parts) + 1):
        module_name = ".".join(parts[:depth])
        module = sys.modules.get(module_name) or types.ModuleType(module_name)
        monkeypatch.setitem(sys.modules, module_name, module)
    setattr(sys.modules[dotted], name, obj)


class ModelCheckpoint:  # registered as pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint
    def __init__(self):
        self.monitor = "val/loss"
        self.best_model_path = "/logs/last.ckpt"
        self.best_model_score = torch.tensor(0.125)


class ContainerMetadata:  # registered as omegaconf.base.ContainerMetadata
    def __init__(self):
        self.object_type, self.key_type, self.element_type = dict, typing.Any, typing.Any
        self.flags = {"readonly": False}


class DictConfig:  # registered as omegaconf.dictconfig.DictConfig, pickled through its state
    def __init__(self, content):
        self._content, self._metadata = content, ContainerMetadata()

    def __getstate__(self):
        return {"_content": self._content, "_metadata": self._metadata, "_parent": None}


def _weights() -> OrderedDict:
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=generator)
    weights = OrderedDict([
        ("model.diffusion_model.out.2.weight", torch.randn(3, 5, generator=generator).to(torch.float16)),
        ("model.diffusion_model.out.2.bias", torch.tensor([1.0, -0.0, float("inf")], dtype=torch.float16)),
        ("first_stage_model.encoder.base", base),
        ("first_stage_model.encoder.view", base[:, 1::2]),  # non-contiguous view of the same storage
        ("cond_stage_model.position_ids", torch.arange(7).unsqueeze(0)),
        ("model_ema.num_updates", torch.tensor(42, dtype=torch.int32)),
    ])
    weights._metadata = OrderedDict({"": {"version": 1}})  # what module.state_dict() attaches
    return weights


def _lightning_checkpoint(state_dict) -> dict:
    return {
        "epoch": 12,
        "global_step": 875000,
        "pytorch-lightning_version": "1.4.2",
        "state_dict": state_dict,
        # older Lightning keys callbacks by the class itself, newer ones by a string
        "callbacks": {ModelCheckpoint: {"best_model_score": np.float64(0.125),
                                        "best_k_models": {"/logs/a.ckpt": np.float32(0.5)}},
                      "ModelCheckpoint{'monitor': 'val/loss'}": ModelCheckpoint()},
        "optimizer_states": [{"state": {0: {"step": 10, "exp_avg": torch.zeros(3)}},
                              "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0]}]}],
        "lr_schedulers": [{"last_epoch": 12, "_last_lr": [1e-4]}],
        "hyper_parameters": {"args": argparse.Namespace(base_learning_rate=1e-4, gpus="0,"),
                             "config": DictConfig({"target": "ldm.models.diffusion.ddpm.LatentDiffusion"}),
                             "counts": np.arange(3), "seen": {1, 2}},
    }


def _write_lightning_ckpt(monkeypatch, path, zipped, state_dict=None):
    with monkeypatch.context() as patch:  # the fake modules exist only while the file is written
        checkpoint = _lightning_checkpoint(_weights() if state_dict is None else state_dict)
        _register(patch, "pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint", ModelCheckpoint)
        _register(patch, "omegaconf.base", "ContainerMetadata", ContainerMetadata)
        _register(patch, "omegaconf.dictconfig", "DictConfig", DictConfig)
        return _save(checkpoint, path, zipped)


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.contiguous().reshape(-1).view(torch.uint8)


@FORMATS
def test_lightning_ckpt_gives_the_exact_state_dict(tmp_path, monkeypatch, caplog, zipped):
    path = _write_lightning_ckpt(monkeypatch, tmp_path / "model.ckpt", zipped)
    assert "pytorch_lightning" not in sys.modules and "omegaconf" not in sys.modules
    with pytest.raises(pickle.UnpicklingError, match="ModelCheckpoint"):
        torch.load(path, weights_only=True)  # so the restricted reader is what reads it below

    with caplog.at_level(logging.INFO, logger="ldm.loading.checkpoint"):
        loaded, metadata = load_state_dict(path)

    expected = _weights()
    assert list(loaded) == list(expected)
    for key, tensor in expected.items():
        assert loaded[key].dtype == tensor.dtype and loaded[key].shape == tensor.shape, key
        assert loaded[key].stride() == tensor.stride(), key
        assert torch.equal(_bits(loaded[key]), _bits(tensor)), key  # bitwise, inf and -0.0 included
    base, view = loaded["first_stage_model.encoder.base"], loaded["first_stage_model.encoder.view"]
    assert view.untyped_storage().data_ptr() == base.untyped_storage().data_ptr()  # still shared
    assert metadata["global_step"] == "875000" and metadata["pytorch-lightning_version"] == "1.4.2"
    assert "stand-ins for" in caplog.text and "ModelCheckpoint" in caplog.text and "DictConfig" in caplog.text
    # nothing the file names was imported to read it
    assert "pytorch_lightning" not in sys.modules and "omegaconf" not in sys.modules


@FORMATS
def test_training_data_comes_back_as_inert_values(tmp_path, monkeypatch, zipped):
    contents = read_torch_file(_write_lightning_ckpt(monkeypatch, tmp_path / "model.ckpt", zipped))
    value = contents.value
    assert contents.stand_ins == ("argparse.Namespace", "omegaconf.base.ContainerMetadata",
                                  "omegaconf.dictconfig.DictConfig",
                                  "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint")
    (class_key, class_entry), (_, instance) = value["callbacks"].items()
    assert issubclass(class_key, InertObject) and class_key.origin.endswith("ModelCheckpoint")
    assert class_entry["best_model_score"] == np.float64(0.125)
    assert type(class_entry["best_k_models"]["/logs/a.ckpt"]) is np.float32
    assert isinstance(instance, class_key) and instance.state["monitor"] == "val/loss"
    assert torch.equal(instance.state["best_model_score"], torch.tensor(0.125))

    hparams = value["hyper_parameters"]
    assert hparams["args"].state == {"base_learning_rate": 1e-4, "gpus": "0,"}
    config = hparams["config"]
    assert config.state["_content"] == {"target": "ldm.models.diffusion.ddpm.LatentDiffusion"}
    assert config.state["_metadata"].state["object_type"] == GlobalName("builtins", "dict")
    assert config.state["_metadata"].state["key_type"] == GlobalName("typing", "Any")
    assert np.array_equal(hparams["counts"], np.arange(3)) and hparams["seen"] == {1, 2}
    assert value["optimizer_states"][0]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert torch.equal(value["optimizer_states"][0]["state"][0]["exp_avg"], torch.zeros(3))


def test_zip_storages_are_copy_on_write_views_of_the_file(tmp_path, monkeypatch):
    path = _write_lightning_ckpt(monkeypatch, tmp_path / "model.ckpt", zipped=True)
    before = path.read_bytes()
    loaded = read_torch_file(path).value["state_dict"]
    loaded["first_stage_model.encoder.base"].add_(1)  # private mapping: the file is untouched
    assert path.read_bytes() == before
    again = read_torch_file(path).value["state_dict"]
    assert torch.equal(again["first_stage_model.encoder.base"], _weights()["first_stage_model.encoder.base"])


# --- files that try to run code ----------------------------------------------------------------

def _marker(tmp_path) -> pathlib.Path:
    return tmp_path / "pwned"


class _Reduce:
    """Pickles as ``func(*args)``; stands for any object whose pickle is a call."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args

    def __call__(self, *args):  # lets pickle write a _Reduce as the callee of another _Reduce
        raise AssertionError("never called while saving")


def _exec_payload(marker):
    return _Reduce(builtins.exec, f"open({str(marker)!r}, 'w').write('x')")


def _getattr_gadget(marker):
    # getattr(Path(marker), "write_text")("x"): a call on the result of a call
    return _Reduce(_Reduce(getattr, pathlib.Path(marker), "write_text"), "x")


PAYLOADS = {
    "exec": (lambda m: _exec_payload(m), 2, "builtins.exec"),
    "os.system": (lambda m: _Reduce(os.system, f"touch {m}"), 2, f"{os.system.__module__}.system"),
    "subprocess.Popen": (lambda m: _Reduce(subprocess.Popen, ["touch", str(m)]), 2, "subprocess.Popen"),
    "getattr": (_getattr_gadget, 2, "builtins.getattr"),
    # a method by qualified name: protocol 2 writes getattr(pathlib.Path, ...), protocol 4 the name
    "Path.write_text-p2": (lambda m: _Reduce(pathlib.Path.write_text, pathlib.Path(m), "x"), 2, "builtins.getattr"),
    "Path.write_text-p4": (lambda m: _Reduce(pathlib.Path.write_text, pathlib.Path(m), "x"), 4,
                           "pathlib.Path.write_text"),
}


@FORMATS
@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4")  # torch's own weights_only pass
def test_code_in_the_pickle_is_refused_and_never_runs(tmp_path, payload, zipped):
    make, protocol, named = PAYLOADS[payload]
    marker = _marker(tmp_path)
    path = _save({"state_dict": {"w": torch.ones(2)}, "callbacks": make(marker)},
                 tmp_path / "evil.ckpt", zipped, protocol)
    with pytest.raises(CheckpointError) as info:
        load_state_dict(path)
    message = str(info.value)
    assert "evil.ckpt" in message and f"refused: the pickle calls {named}" in message
    assert not marker.exists()


@FORMATS
def test_a_payload_among_the_weights_is_refused(tmp_path, zipped):
    marker = _marker(tmp_path)
    weights = {"model.diffusion_model.w": torch.ones(2), "model.diffusion_model.b": _exec_payload(marker)}
    path = _save({"state_dict": weights, "epoch": 1}, tmp_path / "evil.ckpt", zipped)
    with pytest.raises(CheckpointError, match="refused: the pickle calls builtins.exec"):
        load_state_dict(path)
    assert not marker.exists()


def test_a_lightning_named_function_gets_an_inert_stand_in_and_never_runs(tmp_path, monkeypatch):
    marker = _marker(tmp_path)

    def write_marker(path):
        pathlib.Path(path).write_text("x")

    with monkeypatch.context() as patch:
        _register(patch, "pytorch_lightning.utilities", "write_marker", write_marker)
        path = _save({"state_dict": {"w": torch.ones(2)}, "hook": _Reduce(write_marker, str(marker))},
                     tmp_path / "odd.ckpt", zipped=True)
    contents = read_torch_file(path)
    assert isinstance(contents.value["hook"], InertObject) and contents.value["hook"].args == (str(marker),)
    assert contents.stand_ins == ("pytorch_lightning.utilities.write_marker",)
    assert not marker.exists()


def _storage(values: torch.Tensor) -> torch.storage.TypedStorage:
    return torch.storage.TypedStorage(wrap_storage=values.untyped_storage(), dtype=values.dtype, _internal=True)


class _TensorWithState:
    """Pickles as a tensor rebuild followed by BUILD: torch's own unpickler would call
    Tensor.__setstate__ (``set_``) with whatever the file says."""

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (_storage(torch.ones(4)), 0, (4,), (1,), False, OrderedDict()), (None, 0, (8,), (1,)))


ABUSES = {
    "tensor on a non-storage": (
        _Reduce(torch._utils._rebuild_tensor_v2, "not a storage", 0, (2,), (1,), False, OrderedDict()),
        "builds a tensor on a str"),
    "tensor past its storage": (
        _Reduce(torch._utils._rebuild_tensor_v2, _storage(torch.ones(4)), 0, (1000,), (1,), False, OrderedDict()),
        "needs 1000 elements"),
    "backward hooks": (
        _Reduce(torch._utils._rebuild_tensor_v2, _storage(torch.ones(4)), 0, (4,), (1,), False,
                OrderedDict({0: "hook"})),
        "backward hooks"),
    "BUILD on a tensor": (_TensorWithState(), "sets the state of a Tensor"),
    "a name-only global called": (_Reduce(typing.cast, int, "x"), "calls typing.cast"),
    "a type reference called": (_Reduce(dict, [("a", 1)]), "calls builtins.dict"),
}


@FORMATS
@pytest.mark.parametrize("abuse", list(ABUSES))
def test_allowed_globals_cannot_be_bent(tmp_path, abuse, zipped):
    payload, message = ABUSES[abuse]
    path = _save({"state_dict": {"w": torch.ones(2)}, "x": payload}, tmp_path / "bent.ckpt", zipped)
    with pytest.raises(PickleReadError, match=message):
        read_torch_file(path)


# Hand-written opcodes that torch.save never writes, each aimed at a method of a real object.
OPCODE_ABUSES = {
    "INST os.system (protocol 0)": (b"(S'touch x'\nios\nsystem\n.", "calls os.system"),
    "BUILD on a stand-in class": (b"\x80\x02cpytorch_lightning\nX\n}X\x01\x00\x00\x00aK\x01sb.",
                                  "sets the state of the class pytorch_lightning.X"),
    "BUILD on a torch dtype": (b"\x80\x02ctorch\nfloat16\n}b.", "sets the state of the dtype torch.float16"),
    "SETITEM on a torch.Size": (b"\x80\x02ctorch\nSize\n]\x85RK\x01K\x02s.", "SETITEM targets a Size"),
    "APPEND on a set": (b"\x80\x02c__builtin__\nset\n]\x85RK\x01a.", "APPEND targets a set"),
    "NEWOBJ of a rebuild function": (b"\x80\x02ccollections\nOrderedDict\n)\x81.",
                                     "creates collections.OrderedDict with NEWOBJ"),
    "dunder attribute on an OrderedDict": (
        b"\x80\x02ccollections\nOrderedDict\n)R}X\x09\x00\x00\x00__class__K\x01sb.", "odd attributes"),
    "numpy object dtype": (b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R.", "numpy 'O8' dtype"),
    "typing.Any called (protocol 4)": (b"\x80\x04\x8c\x06typing\x8c\x03Any\x93)R.", "calls typing.Any"),
    "a persistent id outside a torch file": (b"\x80\x02X\x01\x00\x00\x00aQ.", "persistent id"),
}


@pytest.mark.parametrize("abuse", list(OPCODE_ABUSES))
def test_opcodes_that_call_into_objects_are_checked(abuse):
    data, message = OPCODE_ABUSES[abuse]
    with pytest.raises(PickleReadError, match=message):
        RestrictedUnpickler(io.BytesIO(data)).load()


def test_truncated_legacy_file_is_an_error_not_a_crash(tmp_path, monkeypatch):
    path = _write_lightning_ckpt(monkeypatch, tmp_path / "model.ckpt", zipped=False)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(PickleReadError, match="truncated|does not hold"):
        read_torch_file(cut)
    with pytest.raises(CheckpointError, match="cut.ckpt"):
        load_state_dict(cut)


# --- the normal loader path ----------------------------------------------------------------------

def test_load_checkpoint_reads_a_lightning_wrapped_tiny_sd1(tmp_path, monkeypatch):
    from ldm.devices import detect_compute
    from ldm.loading.checkpoint import save_state_dict
    from ldm.model import load_checkpoint
    from ldm.tiny import tiny_checkpoint

    state_dict, metadata = tiny_checkpoint("sd1", dtype=torch.float16)
    reference = tmp_path / "tiny_sd1.safetensors"
    save_state_dict(reference, state_dict, metadata)
    ckpt = _write_lightning_ckpt(monkeypatch, tmp_path / "tiny_sd1.ckpt", zipped=True,
                                 state_dict=OrderedDict(state_dict))

    fp32 = detect_compute("cpu", force_dtype=torch.float32)
    model, clip, vae = load_checkpoint(ckpt, compute=fp32)
    ref_model, ref_clip, ref_vae = load_checkpoint(reference, compute=fp32)
    assert (model.family, model.prediction, model.config) == (ref_model.family, ref_model.prediction,
                                                              ref_model.config)
    for ours, theirs in ((model.unet, ref_model.unet), (vae.model, ref_vae.model)):
        expected = theirs.state_dict()
        assert all(torch.equal(value, expected[key]) for key, value in ours.state_dict().items())
    assert clip is not None and set(clip.encoders) == set(ref_clip.encoders)
