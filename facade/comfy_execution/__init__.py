"""ComfyUI's ``comfy_execution`` package as node packs import it (``graph_utils``, ``graph``,
``utils``): building graphs that a node expands into at run time, blocking outputs, and the
running node's ids. Weft's executor (graph.executor) runs what these build."""

from _weft_lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
