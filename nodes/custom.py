"""Loading third-party node packs from ``custom_nodes/`` folders, the way ComfyUI loads them.

A pack is a folder with ``__init__.py`` or a single ``.py`` file. It exports ``NODE_CLASS_MAPPINGS``
(V1; optionally ``NODE_DISPLAY_NAME_MAPPINGS`` and ``WEB_DIRECTORY``) or, failing that, a
``comfy_entrypoint`` (V3) that returns an extension whose ``get_node_list()`` gives node classes.
As in ComfyUI, a folder pack is imported under its path with dots replaced by ``_x_`` and a file
pack under its path without ``.py`` (so relative imports inside a pack work, and two packs never
share a module name). A pack that raises, calls ``sys.exit()``, hangs or tries to ``pip install``
while importing is reported and skipped; the server starts regardless. A pack cannot replace a
core node. Routes a pack added are taken back when its import fails. Each pack's outcome is kept
in a :class:`PackReport` (``GET /node_packs``).
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import inspect
import logging
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nodes.pack_errors import describe_failure
from nodes.pack_guard import install_guard
from nodes.pack_host import PackHost, install_comfy_facade

log = logging.getLogger(__name__)


@dataclass
class PackReport:
    name: str
    path: str
    loaded: bool = False
    seconds: float = 0.0
    error: str | None = None
    #: ``missing_dependency`` | ``comfyui_internal`` | ``timeout`` | ``error`` (when not loaded)
    failure: str | None = None
    missing_module: str | None = None
    pip_install: str | None = None
    blocked_installs: list[str] = field(default_factory=list)
    protocol: str | None = None  # "v1" | "v3"
    nodes: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    web_directory: str | None = None

    def as_json(self) -> dict:
        return {"name": self.name, "path": self.path, "loaded": self.loaded, "seconds": round(self.seconds, 3),
                "error": self.error, "failure": self.failure, "missing_module": self.missing_module,
                "pip_install": self.pip_install, "blocked_installs": self.blocked_installs,
                "protocol": self.protocol, "nodes": self.nodes, "rejected": self.rejected,
                "web_directory": self.web_directory}


class PackImportError(ImportError):
    """A pack's import failed; ``cause`` is what it raised."""

    def __init__(self, cause: BaseException, trace: str) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}\n{trace}")
        self.cause = cause


def discover_packs(folder: Path) -> list[Path]:
    """Pack entries of a custom_nodes folder, sorted; ``*.disabled`` and hidden entries skipped."""
    if not folder.is_dir():
        return []
    entries = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith((".", "__")) or entry.name.endswith(".disabled"):
            continue
        if entry.is_dir() and (entry / "__init__.py").is_file():
            entries.append(entry)
        elif entry.is_file() and entry.suffix == ".py":
            entries.append(entry)
    return entries


def module_name_for(path: Path) -> str:
    """ComfyUI's ``sys.modules`` name for a pack: a folder's path with ``.`` → ``_x_``, a file's
    path without its suffix."""
    return str(path.with_suffix("")) if path.is_file() else str(path).replace(".", "_x_")


def _import_pack(path: Path, module_name: str):
    init = path / "__init__.py" if path.is_dir() else path
    spec = importlib.util.spec_from_file_location(
        module_name, init, submodule_search_locations=[str(path)] if path.is_dir() else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _v3_node_classes(module) -> dict[str, type]:
    """``{node_id: class}`` of a V3 pack: ``comfy_entrypoint()`` (awaited if a coroutine) gives an
    extension; its ``on_load()`` runs, then ``get_node_list()`` (both may be async)."""

    async def collect() -> list:
        extension = module.comfy_entrypoint()
        if inspect.isawaitable(extension):
            extension = await extension
        for step in ("on_load", "get_node_list"):
            if not callable(getattr(extension, step, None)):
                raise TypeError(f"comfy_entrypoint() returned {type(extension).__name__}, which has no {step}()")
        loaded = extension.on_load()
        if inspect.isawaitable(loaded):
            await loaded
        nodes = extension.get_node_list()
        return list(await nodes if inspect.isawaitable(nodes) else nodes)

    classes = {}
    for node_class in asyncio.run(collect()):
        schema = node_class.define_schema()
        classes[schema.node_id] = node_class
    return classes


def _run_with_timeout(name: str, timeout: float, work):
    """Run ``work()`` in a helper thread (with this thread's context variables) so that a pack
    that hangs cannot stop the server from starting."""
    outcome: dict = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = context.run(work)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt included: a pack must not stop us
            outcome["error"] = exc
            outcome["traceback"] = traceback.format_exc()

    thread = threading.Thread(target=target, name=f"import-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"import did not finish within {timeout:g} s")
    if "error" in outcome:
        raise PackImportError(outcome["error"], outcome["traceback"])
    return outcome["value"]


def _load_pack(path: Path, timeout: float):
    """Import one pack; ``(module, {name: class}, display names, "v1" | "v3")``."""

    def work():
        module = _import_pack(path, module_name_for(path))
        mappings = getattr(module, "NODE_CLASS_MAPPINGS", None)
        if mappings is not None:
            if not isinstance(mappings, dict):
                raise TypeError("NODE_CLASS_MAPPINGS must be a dict")
            display = getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", None)
            return module, mappings, display if isinstance(display, dict) else {}, "v1"
        if callable(getattr(module, "comfy_entrypoint", None)):
            classes = _v3_node_classes(module)
            display = {name: getattr(cls.define_schema(), "display_name", None) for name, cls in classes.items()}
            return module, classes, {k: v for k, v in display.items() if v}, "v3"
        raise LookupError("the pack has neither NODE_CLASS_MAPPINGS nor comfy_entrypoint")

    return _run_with_timeout(path.name, timeout, work)


def _prompt_server_hook(host: PackHost | None, name: str):
    return getattr(getattr(host, "prompt_server", None), name, None)


def pack_entries(folders: list[Path], whitelist: set[str] | None = None) -> list[Path]:
    """The packs of ``folders`` that would be imported (``whitelist``: only these names)."""
    return [path for folder in folders for path in discover_packs(folder)
            if whitelist is None or pack_name(path) in whitelist]


def pack_name(path: Path) -> str:
    return path.stem if path.is_file() else path.name


def load_custom_packs(folders: list[Path], registry, *, timeout: float = 30.0,
                      whitelist: set[str] | None = None, host: PackHost | None = None,
                      skip: dict[str, str] | None = None,
                      on_import: Callable[[str, str], None] | None = None) -> list[PackReport]:
    """Import every pack of ``folders`` (``whitelist``: only these names) and register its nodes.

    With a ``host``, ComfyUI's facade is installed and bound to it first, so packs can import
    ``folder_paths``, ``comfy.*`` and the rest (see nodes.pack_host). A pack in ``skip`` is
    reported with its reason and not imported (nodes.pack_probe found it unsafe); ``on_import``
    hears ``("importing", name)`` before each pack and ``("done", name)`` after it."""
    if host is not None:
        install_comfy_facade(host)
    guard = install_guard()
    reports = []
    # A node's INPUT_TYPES may read a model folder that a pack loaded later registers (Easy-Use
    # lists InstantID's folder): rejected nodes get a second try once every pack has loaded,
    # which is when ComfyUI first calls INPUT_TYPES.
    retry: list[tuple[PackReport, dict, dict]] = []
    for path in pack_entries(folders, whitelist):
        name = pack_name(path)
        report = PackReport(name=name, path=str(path))
        reports.append(report)
        if skip and name in skip:
            report.error, report.failure = skip[name], "unsafe_import"
            log.error("custom node pack %s is not imported: %s", name, skip[name])
            continue
        if on_import is not None:
            on_import("importing", name)
        begin, end = _prompt_server_hook(host, "begin_pack"), _prompt_server_hook(host, "end_pack")
        if begin is not None:
            begin(name, str(path))
        start = time.perf_counter()
        try:
            with guard.armed(name) as attempts:
                module, mappings, display, report.protocol = _load_pack(path, timeout)
        except Exception as exc:
            _record_failure(report, exc, path)
            if on_import is not None:
                on_import("done", name)
            continue
        finally:
            report.seconds = time.perf_counter() - start
            report.blocked_installs = list(attempts)
            if end is not None:
                end(name, report.error is None)
        report.rejected = registry.register_mappings(
            mappings, display, python_module=f"custom_nodes.{name}")
        report.nodes = [str(n) for n in mappings if str(n) not in report.rejected]
        if report.rejected:
            retry.append((report, mappings, display))
        web_dir = getattr(module, "WEB_DIRECTORY", None)
        if isinstance(web_dir, str):
            base = path if path.is_dir() else path.parent
            report.web_directory = str((base / web_dir).resolve())
        report.loaded = True
        if on_import is not None:
            on_import("done", name)
    for report, mappings, display in retry:
        _register_again(registry, report, mappings, display)
    for report in reports:
        for node_name, reason in report.rejected.items():
            log.warning("custom node %s from %s rejected: %s", node_name, report.name, reason)
    return reports


def _register_again(registry, report: PackReport, mappings: dict, display: dict) -> None:
    """Register a pack's rejected nodes once more (after all packs loaded); keep what still fails."""
    again = {name: cls for name, cls in mappings.items() if str(name) in report.rejected}
    still = registry.register_mappings(again, display, python_module=f"custom_nodes.{report.name}")
    report.nodes += [str(n) for n in again if str(n) not in still]
    report.rejected = still


def _record_failure(report: PackReport, exc: Exception, path: Path) -> None:
    cause = exc.cause if isinstance(exc, PackImportError) else exc
    facts = describe_failure(cause, path if path.is_dir() else None)
    report.error = str(exc)
    report.failure = facts["kind"]
    report.missing_module = facts.get("module")
    report.pip_install = facts.get("pip")
    hint = f" ({report.pip_install})" if report.pip_install else ""
    log.warning("custom node pack %s failed to import: %s%s", report.name, exc, hint)
