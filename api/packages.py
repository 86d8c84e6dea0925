"""Where installed Python packages that ship files (ComfyUI's frontend, its templates, its node
docs) lie, found without importing them: importing a data package can be slow or fail."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_folders(module: str) -> list[Path]:
    """The folders of an installed package (several for a namespace package); empty when it is not
    installed."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return []
    return [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []


def package_folder(module: str) -> Path | None:
    """The folder of an installed regular package, or None."""
    folders = package_folders(module)
    return folders[0] if folders else None
