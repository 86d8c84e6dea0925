"""The memory manager: model residency on the compute device, partial loading and streaming.

``MemoryManager`` (``manager.py``) is the one object that decides; ``plan.py`` holds its pure
arithmetic (budgets, resident sets, what to unload); ``residency.py`` moves tensors (resident
layers, streamed layers with prefetch, LoRA patches on either); ``options.py`` the VRAM modes;
``admission.py`` refuses allocations that cannot fit before they are made.
"""

from ldm.memory.admission import AdmissionError
from ldm.memory.manager import MemoryManager
from ldm.memory.options import MemoryOptions, VramMode
from ldm.memory.plan import LoadPlan, UnitSize, plan_load, resident_budget
from ldm.memory.residency import LoadedModel, Placement

__all__ = ["AdmissionError", "LoadPlan", "LoadedModel", "MemoryManager", "MemoryOptions", "Placement", "UnitSize",
           "VramMode", "plan_load", "resident_budget"]
