"""Loading third-party node packs from ``custom_nodes/`` folders.

A pack is a folder with ``__init__.py`` or a single ``.py`` file exporting ``NODE_CLASS_MAPPINGS``
(and optionally ``NODE_DISPLAY_NAME_MAPPINGS`` and ``WEB_DIRECTORY``). A pack that raises, calls
``sys.exit()`` or hangs while importing is reported and skipped; the server starts regardless. A
pack cannot replace a core node. Each pack's outcome is kept in a :class:`PackReport`.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class PackReport:
    name: str
    path: str
    loaded: bool = False
    seconds: float = 0.0
    error: str | None = None
    nodes: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    web_directory: str | None = None

    def as_json(self) -> dict:
        return {"name": self.name, "path": self.path, "loaded": self.loaded, "seconds": round(self.seconds, 3),
                "error": self.error, "nodes": self.nodes, "rejected": self.rejected,
                "web_directory": self.web_directory}


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


def _import_with_timeout(path: Path, module_name: str, timeout: float):
    """Import in a helper thread so that a pack that hangs cannot stop the server from starting."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["module"] = _import_pack(path, module_name)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt included: a pack must not stop us
            outcome["error"] = exc
            outcome["traceback"] = traceback.format_exc()

    thread = threading.Thread(target=target, name=f"import-{path.name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"import did not finish within {timeout:g} s")
    if "error" in outcome:
        exc = outcome["error"]
        raise ImportError(f"{type(exc).__name__}: {exc}\n{outcome['traceback']}") from None
    return outcome["module"]


def load_custom_packs(folders: list[Path], registry, *, timeout: float = 30.0,
                      whitelist: set[str] | None = None) -> list[PackReport]:
    """Import every pack of ``folders`` (``whitelist``: only these names) and register its nodes."""
    reports = []
    for folder in folders:
        for path in discover_packs(folder):
            name = path.stem if path.is_file() else path.name
            if whitelist is not None and name not in whitelist:
                continue
            report = PackReport(name=name, path=str(path))
            reports.append(report)
            start = time.perf_counter()
            try:
                module = _import_with_timeout(path, f"custom_nodes.{name}", timeout)
            except Exception as exc:
                report.error = str(exc)
                log.warning("custom node pack %s failed to import: %s", name, exc)
                continue
            finally:
                report.seconds = time.perf_counter() - start
            mappings = getattr(module, "NODE_CLASS_MAPPINGS", None)
            if not isinstance(mappings, dict):
                report.error = "the pack has no NODE_CLASS_MAPPINGS"
                continue
            display = getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", None)
            report.rejected = registry.register_mappings(
                mappings, display if isinstance(display, dict) else {}, python_module=f"custom_nodes.{name}")
            report.nodes = [n for n in mappings if n not in report.rejected]
            web_dir = getattr(module, "WEB_DIRECTORY", None)
            if isinstance(web_dir, str):
                base = path if path.is_dir() else path.parent
                report.web_directory = str((base / web_dir).resolve())
            report.loaded = True
            for node_name, reason in report.rejected.items():
                log.warning("custom node %s from %s rejected: %s", node_name, name, reason)
    return reports
