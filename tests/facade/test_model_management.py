"""``comfy.model_management``: devices from Weft's engine, loading through its memory manager, and
interrupts that end the job as interrupted."""

import pytest
import torch

from graph.context import Interrupted
from graph.executor import Executor
from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.memory import MemoryOptions, VramMode
from ldm.model import load_checkpoint


@pytest.fixture
def mm(pack_studio):
    import comfy.model_management

    return comfy.model_management


def _interrupted(outcome, events):
    names = [event for event, _ in events]
    return outcome.status == "interrupted" and "execution_interrupted" in names and "execution_error" not in names


def test_cpu_engine_answers(mm):
    assert mm.get_torch_device() == torch.device("cpu")
    assert mm.intermediate_device() == mm.unet_offload_device() == mm.vae_device() == torch.device("cpu")
    assert mm.intermediate_dtype() == torch.float32
    assert mm.text_encoder_device() == torch.device("cpu") and mm.text_encoder_offload_device() == torch.device("cpu")
    assert mm.cpu_mode() and not mm.mps_mode() and mm.cpu_state is mm.CPUState.CPU
    assert mm.vram_state is mm.VRAMState.DISABLED
    assert not mm.should_use_fp16() and not mm.should_use_bf16(torch.device("cpu"))
    assert mm.vae_dtype() == mm.unet_dtype() == mm.text_encoder_dtype() == torch.float32
    assert mm.unet_manual_cast(torch.float32, torch.device("cpu")) is None
    assert mm.unet_manual_cast(torch.float16, torch.device("cpu")) == torch.float32
    assert mm.unet_dtype(weight_dtype=torch.float8_e4m3fn) == torch.float8_e4m3fn
    assert not mm.xformers_enabled() and not mm.XFORMERS_IS_AVAILABLE and mm.pytorch_attention_enabled()
    assert not mm.sage_attention_enabled() and not mm.is_intel_xpu() and not mm.directml_enabled
    assert not mm.is_nvidia() and not mm.is_amd()
    assert mm.get_free_memory() > 0 and mm.get_total_memory() >= mm.get_free_memory()
    assert mm.total_ram > 0 and mm.total_vram > 0
    assert mm.get_free_memory(torch_free_too=True)[0] > 0
    assert mm.minimum_inference_memory() > mm.extra_reserved_memory() > 0
    assert mm.DISABLE_SMART_MEMORY is False
    assert mm.dtype_size(torch.float16) == 2 and mm.dtype_size(torch.float32) == 4
    assert mm.pick_weight_dtype(torch.float32, torch.float16) == torch.float16
    assert mm.pick_weight_dtype(None, torch.bfloat16) == torch.bfloat16
    assert mm.OOM_EXCEPTION is torch.OutOfMemoryError
    assert torch.float8_e4m3fn in mm.get_supported_float8_types()
    assert mm.get_autocast_device(torch.device("cpu")) == "cpu"
    assert mm.is_device_cpu(torch.device("cpu")) and not mm.is_device_cuda(torch.device("cpu"))
    mm.soft_empty_cache()


def test_casts(mm):
    t = torch.ones(3)
    assert mm.cast_to(t) is t
    assert mm.cast_to(t, torch.float16).dtype == torch.float16
    assert mm.cast_to_device(t, torch.device("cpu"), torch.float32, copy=True) is not t
    assert mm.module_size(torch.nn.Linear(4, 2)) == (8 + 2) * 4


def test_load_models_gpu_on_a_cpu_engine_is_bookkeeping(pack_studio, mm, tiny_sd1):
    model, clip, vae = load_checkpoint(tiny_sd1, compute=pack_studio.services.engine.compute)
    weight = next(model.unet.parameters())
    mm.load_models_gpu([model, clip, vae, object(), None])
    assert next(model.unet.parameters()) is weight  # nothing moved or cast
    assert model in mm.loaded_models() and clip in mm.loaded_models()
    entry = next(lm for lm in mm.current_loaded_models if lm.model is model)
    assert entry.device == torch.device("cpu") and not entry.is_dead()
    mm.unload_all_models()
    assert model not in mm.loaded_models()


def test_load_models_gpu_hands_models_to_the_memory_manager(pack_studio, mm, tiny_sd1):
    """A non-CPU VRAM mode (on the CPU device, as no GPU is here) runs the real loading path."""
    engine = Engine(detect_compute("cpu", force_dtype=torch.float32), MemoryOptions(mode=VramMode.NORMAL))
    pack_studio.services.engine = engine
    model, clip, vae = load_checkpoint(tiny_sd1, compute=engine.compute)

    class PackPatcher:  # a pack's own ModelPatcher-like wrapper
        def __init__(self, module):
            self.model = module
            self.load_device = torch.device("cpu")

    own = PackPatcher(torch.nn.Linear(4, 4))
    mm.load_models_gpu([model, vae, own, "not a model"])
    held = {entry.model for entry in engine.memory.loaded_models()}
    assert {model.unet, vae.model, own.model} <= held
    assert all(entry.users == 0 for entry in engine.memory.loaded_models())
    listed = list(mm.current_loaded_models)
    assert {id(lm.model) for lm in listed} >= {id(model), id(vae), id(own)}
    unet_entry = next(lm for lm in listed if lm.model is model)
    assert unet_entry.model_loaded_memory() == unet_entry.model_memory() > 0
    assert unet_entry.real_model() is model.unet
    freed = mm.free_memory(1e30, torch.device("cpu"), keep_loaded=[unet_entry])
    assert model not in [lm.model for lm in freed] and vae in [lm.model for lm in freed]
    mm.unload_all_models()
    assert all(entry.resident_bytes == 0 for entry in engine.memory.loaded_models())


def test_models_no_pack_loaded_are_listed_with_a_view(pack_studio, mm, tiny_sd1):
    """What Weft's own nodes loaded shows too; ``model.model`` is the module, as a patcher's is."""
    engine = Engine(detect_compute("cpu", force_dtype=torch.float32), MemoryOptions(mode=VramMode.NORMAL))
    pack_studio.services.engine = engine
    model, _, _ = load_checkpoint(tiny_sd1, compute=engine.compute)
    with engine.use_unet(model):
        pass
    (listed,) = [lm for lm in mm.current_loaded_models if lm.real_model() is model.unet]
    assert listed.model is not None and listed.model.model is model.unet
    assert listed.model.loaded_size() == listed.model.model_size() > 0
    assert listed.model_unload() and listed.model_loaded_memory() == 0


def test_packs_may_insert_their_own_entries(mm):
    unloaded = []

    class Patcher:
        model = None
        load_device = torch.device("cpu")

        def model_size(self):
            return 10

        def loaded_size(self):
            return 10

        def detach(self, unpatch_all=True):
            unloaded.append(self)

    patcher = Patcher()
    entry = mm.LoadedModel(patcher)
    mm.current_loaded_models.insert(0, entry)
    assert entry in mm.current_loaded_models and mm.current_loaded_models[-1].model is patcher
    assert entry.model_memory() == 10
    mm.unload_all_models()
    assert unloaded == [patcher] and entry not in mm.current_loaded_models


def test_interrupt_flag_is_weft_s(pack_studio, mm):
    assert mm.InterruptProcessingException is Interrupted
    assert not mm.processing_interrupted() and not mm.interrupt_processing
    pack_studio.host.interrupt.request()
    assert mm.processing_interrupted() and mm.interrupt_processing
    with pytest.raises(mm.InterruptProcessingException):
        mm.throw_exception_if_processing_interrupted()
    assert not pack_studio.host.interrupt.is_set()  # raising clears the request, as in ComfyUI
    mm.interrupt_current_processing()
    assert pack_studio.host.interrupt.is_set()
    mm.interrupt_current_processing(False)
    assert not pack_studio.host.interrupt.is_set()
    mm.throw_exception_if_processing_interrupted()
    mm.interrupt_processing = True  # as packs that poke the module global do
    assert pack_studio.host.interrupt.is_set() and mm.interrupt_processing
    with mm.interrupt_processing_mutex:
        mm.interrupt_processing = False
    assert not pack_studio.host.interrupt.is_set()


def test_pack_node_interrupting_itself_ends_the_job_interrupted(pack_studio):
    pack_studio.load("progress_pack.py")
    outcome = pack_studio.execute({"1": {"class_type": "ProgressLoop", "inputs": {"steps": 50, "interrupt_at": 3}},
                                   "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}})
    assert _interrupted(outcome, pack_studio.events)
    stopped = [d for e, d in pack_studio.events if e == "execution_interrupted"]
    assert stopped[0]["node_id"] == "1" and stopped[0]["node_type"] == "ProgressLoop"


def test_user_interrupt_reaches_the_pack_node(pack_studio):
    """The user presses interrupt while the pack's loop runs (here: on its first progress message)."""
    pack_studio.load("progress_pack.py")
    events = []

    def emit(event, data):
        events.append((event, data))
        if event == "progress":
            pack_studio.host.interrupt.request()

    executor = Executor(pack_studio.registry, services=pack_studio.services, interrupt=pack_studio.host.interrupt,
                        emit=emit)
    outcome = executor.execute("p", {"1": {"class_type": "ProgressLoop", "inputs": {"steps": 50, "interrupt_at": -1}},
                                     "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}, ["2"])
    assert _interrupted(outcome, events)
    assert [d["value"] for e, d in events if e == "progress"] == [1]
