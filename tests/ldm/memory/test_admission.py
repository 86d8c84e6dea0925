"""ldm.memory.admission: allocations that cannot fit are refused before they are made, with a
message that names what was asked for, its size and what is available."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.memory import AdmissionError, MemoryManager, MemoryOptions, VramMode
from ldm.memory.admission import admit, available_bytes, describe_tensor, gigabytes, tensor_bytes
from ldm.memory.plan import unet_inference_bytes
from tests.ldm.memory.conftest import tiny_unet_handle

GB = 1000 ** 3
GIB = 1024 ** 3
FP32 = detect_compute("cpu", force_dtype=torch.float32)
CUDA = torch.device("cuda", 0)


def cpu_manager(free: int, reserve: int = GIB) -> MemoryManager:
    return MemoryManager(MemoryOptions(mode=VramMode.CPU, cpu_reserve_bytes=reserve), free_memory=lambda device: free)


def gpu_manager(free: int, loaded=(), reserve: int = 400 * 1024 ** 2) -> MemoryManager:
    """A manager on a pretend GPU: its free-memory figure is ``free``; ``loaded`` stand in for
    loaded models as (resident bytes, in use)."""
    manager = MemoryManager(MemoryOptions(mode=VramMode.NORMAL, reserve_bytes=reserve),
                            free_memory=lambda device: free, empty_cache=lambda device: None)
    entries = [SimpleNamespace(placement=SimpleNamespace(device=CUDA), resident_bytes=size, users=int(in_use))
               for size, in_use in loaded]
    manager.loaded_models = lambda: entries
    return manager


def test_sizes_and_their_descriptions():
    shape = (80, 4, 2048, 2048)
    assert tensor_bytes(shape) == 80 * 4 * 2048 * 2048 * 4
    assert tensor_bytes(shape, torch.float16) == tensor_bytes(shape) // 2
    assert describe_tensor(shape) == "80×4×2048×2048 float32"
    assert gigabytes(tensor_bytes(shape)) == "5.4 GB"
    assert gigabytes(4_200_000) == "0.0042 GB" and gigabytes(-5) == "0 GB"


def test_cpu_passes_what_fits_and_refuses_what_does_not_naming_the_sizes():
    manager = cpu_manager(free=4_100_000_000, reserve=GB)
    assert available_bytes(manager, "cpu") == 3_100_000_000
    admit(manager, 3 * GB, "a small latent")  # passes: nothing raised
    with pytest.raises(AdmissionError) as refused:
        admit(manager, tensor_bytes((80, 4, 2048, 2048)), "EmptyLatentImage: a latent of 80×4×2048×2048 float32")
    assert str(refused.value) == ("EmptyLatentImage: a latent of 80×4×2048×2048 float32 needs 5.4 GB; "
                                  "3.1 GB of memory is available on cpu")
    assert isinstance(refused.value, MemoryError)
    assert refused.value.needed == tensor_bytes((80, 4, 2048, 2048)) and refused.value.available == 3_100_000_000


def test_cpu_margin_is_the_managers_cpu_reserve_and_available_never_reads_negative():
    manager = cpu_manager(free=GIB // 2)
    assert available_bytes(manager, "cpu") == GIB // 2 - GIB
    with pytest.raises(AdmissionError, match="needs 0.001 GB; 0 GB of memory is available on cpu"):
        admit(manager, 1_000_000, "anything")


def test_real_cpu_figure_is_psutils_available_ram_less_the_margin():
    import psutil

    manager = MemoryManager(MemoryOptions(mode=VramMode.CPU))
    expected = psutil.virtual_memory().available - GIB
    assert abs(available_bytes(manager, "cpu") - expected) < 256 * 1024 ** 2  # RAM moves a little meanwhile
    with pytest.raises(AdmissionError):  # no machine this runs on has a petabyte
        admit(manager, 10 ** 15, "a petabyte")


def test_gpu_counts_free_memory_plus_what_idle_models_could_give_up_less_the_reserve():
    manager = gpu_manager(free=2 * GB, loaded=[(3 * GB, False), (5 * GB, True)], reserve=GB // 2)
    # 2 GB free + 3 GB of an idle model (offloaded or streamed) - 0.5 GB reserve; the model in use keeps its 5 GB
    assert available_bytes(manager, CUDA) == int(4.5 * GB)
    admit(manager, 4 * GB, "activations", CUDA)
    with pytest.raises(AdmissionError, match=r"^activations needs 5.0 GB; 4.5 GB of memory is available on cuda:0$"):
        admit(manager, 5 * GB, "activations", CUDA)


def test_gpu_models_on_other_devices_do_not_count():
    manager = gpu_manager(free=GB, loaded=[(3 * GB, False)], reserve=0)
    assert available_bytes(manager, torch.device("cuda", 1)) == GB


def test_engine_admit_defaults_to_the_cpu():
    engine = Engine(FP32, manager=cpu_manager(free=2 * GIB))
    engine.admit(GIB // 2, "half a GiB")
    with pytest.raises(AdmissionError, match="on cpu"):
        engine.admit(2 * GIB, "two GiB")


def test_use_unet_refuses_activations_that_cannot_fit_before_loading_anything():
    handle = tiny_unet_handle()
    engine = Engine(FP32, manager=cpu_manager(free=3 * GIB))
    shape = (8, 4, 128, 128)  # 8 latents of 1024² pixels: about 11 GB of fp32 activations
    with pytest.raises(AdmissionError) as refused:
        with engine.use_unet(handle, latent_shape=shape):
            pass
    assert str(refused.value).startswith("the sd1 UNet's activations on latents 8×4×128×128 float32 needs 11.0 GB; "
                                         "2.1 GB of memory is available on cpu")
    assert engine.memory.find(handle.unet) is None  # refused before the manager loaded it
    with engine.use_unet(handle, latent_shape=(1, 4, 8, 8)) as unet:  # small latents still run
        assert unet.device == torch.device("cpu")
    assert refused.value.needed == unet_inference_bytes(shape, 4)


def test_use_unet_on_a_gpu_counts_what_offloading_would_free():
    handle = tiny_unet_handle()
    compute = dataclasses.replace(FP32, device=CUDA)
    manager = gpu_manager(free=GB, loaded=[(4 * GB, False)], reserve=0)
    engine = Engine(compute, manager=manager)
    with pytest.raises(AdmissionError, match=r"needs 11.0 GB; 5.0 GB of memory is available on cuda:0"):
        with engine.use_unet(handle, latent_shape=(8, 4, 128, 128)):
            pass
