"""Workflow templates: where their files are, and a catalogue of them for Weft's editor.

Three kinds of source, found without importing anything heavy (``importlib.util.find_spec`` and a
scan of ``sys.path``'s module names):
- Weft's own, in ``workflow_templates/`` at the repository root (an ``index.json`` of one "Weft"
  category, the workflows, their thumbnails and input images);
- ComfyUI's, from PyPI: ``comfyui_workflow_templates_json/templates/`` (``index.json``, localized
  ``index.<lang>.json``, ``fuse_options.json``, one ``<name>.json`` per template), each installed
  ``comfyui_workflow_templates_media_*/templates/`` (thumbnails ``<name>-1.<mediaSubtype>``), and
  the older single package ``comfyui_workflow_templates/templates/``;
- node packs' example folders (``example_workflows/`` and ComfyUI's other names for it).

A file name resolves to the first folder that has it (Weft's first), always through
``graph.folders.safe_join``. What each workflow needs (node types, model files) is read once per
file version and kept in the :class:`TemplateLibrary` the server's state owns.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pkgutil
import posixpath
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image, ImageDraw

from api.packages import package_folders
from graph.folders import KIND_ALIASES, FolderPaths, UnsafePathError, check_relative_name, list_files, safe_join

log = logging.getLogger(__name__)

WEFT_TEMPLATES = Path(__file__).resolve().parents[1] / "workflow_templates"
JSON_PACKAGE = "comfyui_workflow_templates_json"
LEGACY_PACKAGE = "comfyui_workflow_templates"  # before the split into json + media packages
MEDIA_PACKAGE_PREFIX = "comfyui_workflow_templates_media_"
#: Folder names a node pack may keep example workflows in, in the order ComfyUI looks for them.
PACK_EXAMPLE_FOLDERS = ("example_workflows", "example", "examples", "workflow", "workflows")
#: Node types that exist only in the editor: never "missing" from the server.
FRONTEND_ONLY_TYPES = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})
MODEL_FILE_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft")
#: The model folder of ComfyUI's loaders, to tell a user where a missing file named by a widget goes.
LOADER_FOLDERS = {
    "CheckpointLoaderSimple": "checkpoints", "CheckpointLoader": "checkpoints",
    "ImageOnlyCheckpointLoader": "checkpoints",
    "LoraLoader": "loras", "LoraLoaderModelOnly": "loras", "VAELoader": "vae", "UNETLoader": "diffusion_models",
    "CLIPLoader": "text_encoders", "DualCLIPLoader": "text_encoders", "TripleCLIPLoader": "text_encoders",
    "ControlNetLoader": "controlnet", "DiffControlNetLoader": "controlnet", "CLIPVisionLoader": "clip_vision",
    "UpscaleModelLoader": "upscale_models", "StyleModelLoader": "style_models", "GLIGENLoader": "gligen",
    "HypernetworkLoader": "hypernetworks",
}
#: ``index.json`` and its translations ``index.<lang>.json`` (not ``index.schema.json`` or ``index.mcp.json``).
INDEX_NAME = re.compile(r"^index(\.[a-z]{2}(-[A-Za-z]{2,4})?)?\.json$")
WEFT_CATEGORY = "Weft"


def _templates_folders(module: str) -> list[Path]:
    return [folder / "templates" for folder in package_folders(module) if (folder / "templates").is_dir()]


def locate_template_folders(weft_folder: Path = WEFT_TEMPLATES) -> tuple[Path, ...]:
    """Weft's folder, then ComfyUI's json package, its media packages and the legacy package."""
    media = sorted({m.name for m in pkgutil.iter_modules() if m.name.startswith(MEDIA_PACKAGE_PREFIX)})
    found = [weft_folder] if weft_folder.is_dir() else []
    for module in (JSON_PACKAGE, *media, LEGACY_PACKAGE):
        found += [f for f in _templates_folders(module) if f not in found]
    return tuple(found)


def pack_example_folder(pack_path: str | Path) -> Path | None:
    """A pack's example workflow folder, when it has one."""
    root = Path(pack_path)
    for name in PACK_EXAMPLE_FOLDERS:
        if (root / name).is_dir():
            return root / name
    return None


# -- what a workflow needs --------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkflowNeeds:
    node_types: frozenset[str]
    #: ``(name, directory)`` from the workflow's and its nodes' ``models`` lists
    declared_models: tuple[tuple[str, str], ...]
    #: ``(name, directory or None)``: model file names in widget values, looked for in every folder
    widget_models: tuple[tuple[str, str | None], ...]


def _graphs(workflow: dict) -> tuple[list[dict], set]:
    """The root graph and every subgraph definition (nested ones too), and the subgraph ids (as the file
    holds them)."""
    graphs: list[dict] = []
    ids: set = set()
    pending = [workflow]
    while pending:
        graph = pending.pop()
        if not isinstance(graph, dict) or len(graphs) > 10_000:
            continue
        graphs.append(graph)
        definitions = graph.get("definitions")
        for subgraph in (definitions.get("subgraphs") or []) if isinstance(definitions, dict) else []:
            if isinstance(subgraph, dict) and subgraph.get("id") not in ids:
                ids.add(subgraph.get("id"))
                pending.append(subgraph)
    return graphs, ids


def _model_entries(value: Any) -> Iterable[tuple[str, str]]:
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            yield entry["name"], str(entry.get("directory") or "")


def _normal(name: str) -> str:
    return name.replace("\\", "/").strip()


def workflow_needs(workflow: Any) -> WorkflowNeeds:
    """Node types and model files a UI workflow (schema 0.4 or 1, subgraphs included) refers to."""
    if not isinstance(workflow, dict):
        raise ValueError("a workflow is a JSON object")
    graphs, subgraph_ids = _graphs(workflow)
    types: set[str] = set()
    declared: dict[str, str] = {_normal(n): d for n, d in _model_entries(workflow.get("models"))}
    in_widgets: dict[str, str | None] = {}
    for graph in graphs:
        for node in graph.get("nodes") or []:
            if not isinstance(node, dict) or not isinstance(node.get("type"), str):
                continue
            node_type = node["type"]
            if node_type not in FRONTEND_ONLY_TYPES and node_type not in subgraph_ids:
                types.add(node_type)
            properties = node.get("properties")
            for name, directory in _model_entries(properties.get("models") if isinstance(properties, dict) else None):
                declared.setdefault(_normal(name), directory)
            values = node.get("widgets_values")
            for value in values.values() if isinstance(values, dict) else values if isinstance(values, list) else ():
                if isinstance(value, str) and value.lower().endswith(MODEL_FILE_EXTENSIONS):
                    in_widgets.setdefault(_normal(value), LOADER_FOLDERS.get(node_type))
    declared_names = {posixpath.basename(n) for n in declared}
    widget_models = tuple((n, d) for n, d in in_widgets.items()
                          if n not in declared and posixpath.basename(n) not in declared_names)
    return WorkflowNeeds(frozenset(types), tuple(declared.items()), widget_models)


@dataclass(frozen=True)
class ModelInventory:
    """The model files present now, by folder kind: relative names and bare file names."""

    by_kind: dict[str, frozenset[str]]

    @classmethod
    def of(cls, folders: FolderPaths) -> ModelInventory:
        by_kind = {}
        for kind in list(folders.models):
            names = set(folders.list_models(kind))
            for root in folders.model_roots(kind):  # .gguf files are not every kind's extension
                names.update(list_files(root, (".gguf",)))
            by_kind[kind] = frozenset(names | {posixpath.basename(n) for n in names})
        return cls(by_kind)

    def has(self, name: str, kind: str | None = None) -> bool:
        """``name`` is in folder ``kind`` (any folder when None); a file in a subfolder counts."""
        wanted = (name, posixpath.basename(name))
        if kind is None:
            return any(w in names for names in self.by_kind.values() for w in wanted)
        names = self.by_kind.get(KIND_ALIASES.get(kind, kind), frozenset())
        return any(w in names for w in wanted)


def missing_models(needs: WorkflowNeeds, inventory: ModelInventory) -> list[dict]:
    missing: list[dict] = [{"name": n, "directory": d} for n, d in needs.declared_models
                           if not inventory.has(n, d or None)]
    missing += [{"name": n, "directory": d} for n, d in needs.widget_models if not inventory.has(n)]
    return missing


# -- files parsed once per version ----------------------------------------------------------------
class ParsedJsonCache:
    """What ``derive`` made of a JSON file, kept until the file changes (modification time, size).
    A file that does not parse is remembered as None until it changes."""

    def __init__(self, derive: Callable[[Any], Any]) -> None:
        self._derive = derive
        self._entries: dict[Path, tuple[tuple[int, int], Any]] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> Any:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            entry = self._entries.get(path)
        if entry is not None and entry[0] == stamp:
            return entry[1]
        try:
            value = self._derive(json.loads(path.read_bytes()))
        except (ValueError, TypeError, RecursionError) as exc:
            log.warning("workflow template %s is not usable: %s", path, exc)
            value = None
        with self._lock:
            self._entries[path] = (stamp, value)
        return value


#: ``<template>-<n>.<ext>``: the thumbnails ComfyUI's frontend asks for.
THUMBNAIL_NAME = re.compile(r"^(?P<template>[^/]+)-\d+\.(?P<ext>webp|png|jpe?g)$", re.IGNORECASE)
PICTURE_FORMATS = {"webp": "WEBP", "png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}


def _not_installed_picture(picture_format: str) -> bytes:
    picture = Image.new("RGB", (256, 256), (44, 46, 52))
    draw = ImageDraw.Draw(picture)
    for row, line in enumerate(("thumbnail", "not installed")):
        width = draw.textlength(line)
        draw.text(((256 - width) / 2, 116 + 16 * row), line, fill=(150, 154, 162))
    buffer = io.BytesIO()
    picture.save(buffer, format=picture_format)
    return buffer.getvalue()


def is_index_name(name: str) -> bool:
    return bool(INDEX_NAME.match(name))


def _is_index(document: Any) -> bool:
    return isinstance(document, list) and all(isinstance(c, dict) and isinstance(c.get("templates"), list)
                                              for c in document)


# -- the library ----------------------------------------------------------------------------------
class TemplateLibrary:
    """Template files and what their workflows need; one per server (the app state holds it)."""

    def __init__(self, folders: tuple[Path, ...] | None = None, weft_folder: Path = WEFT_TEMPLATES) -> None:
        self.weft_folder = weft_folder
        self.folders = locate_template_folders(weft_folder) if folders is None else folders
        self._needs = ParsedJsonCache(workflow_needs)
        self._indexes = ParsedJsonCache(lambda document: document if _is_index(document) else None)
        self._stand_ins: dict[str, bytes] = {}

    @property
    def comfyui_folders(self) -> tuple[Path, ...]:
        return tuple(f for f in self.folders if f != self.weft_folder)

    def resolve(self, name: str, folders: Iterable[Path] | None = None) -> Path | None:
        """The first folder's file of that name; raises UnsafePathError for a name that escapes."""
        for folder in self.folders if folders is None else folders:
            path = safe_join(folder, name)
            if path.is_file():
                return path
        return None

    def _index(self, name: str, folders: Iterable[Path]) -> list | None:
        path = self.resolve(name, folders)
        return self._indexes.get(path) if path is not None else None

    def weft_index(self, name: str = "index.json") -> list:
        """Weft's own categories (a translation ``name`` when Weft has one)."""
        folders = [self.weft_folder] if self.weft_folder.is_dir() else []
        return self._index(name, folders) or self._index("index.json", folders) or []

    def index(self, name: str = "index.json") -> list | None:
        """ComfyUI's index (or its translation ``name``) with Weft's category first. None when
        ComfyUI has no such translation (its frontend then falls back to ``index.json``), or when
        there is no index at all."""
        if not is_index_name(name):
            raise ValueError(f"{name!r} is not a template index")
        comfyui = self._index(name, self.comfyui_folders)
        if comfyui is None and name != "index.json":
            return None
        weft = self.weft_index(name)
        if comfyui is None and not weft:
            return None
        return [*weft, *(comfyui or [])]

    def uninstalled_picture(self, name: str) -> str | None:
        """For a thumbnail of a listed template whose media package is not installed (they are
        large and optional), the picture format of a stand-in; None for any other name."""
        match = THUMBNAIL_NAME.match(name)
        if match is None or self.resolve(name) is not None:
            return None
        listed = {t.get("name") for category in self.index() or () for t in category.get("templates", ())
                  if isinstance(t, dict)}
        return PICTURE_FORMATS[match["ext"].lower()] if match["template"] in listed else None

    def stand_in(self, picture_format: str) -> bytes:
        """A neutral picture saying the thumbnail is not installed (made once per format)."""
        if picture_format not in self._stand_ins:
            self._stand_ins[picture_format] = _not_installed_picture(picture_format)
        return self._stand_ins[picture_format]

    # -- packs --------------------------------------------------------------------------------
    @staticmethod
    def pack_folders(packs: Iterable) -> dict[str, Path]:
        """Loaded packs' example folders by pack name (nodes.custom.PackReport)."""
        folders = {}
        for pack in packs:
            folder = pack_example_folder(pack.path) if pack.loaded and Path(pack.path).is_dir() else None
            if folder is not None:
                folders[pack.name] = folder
        return folders

    def pack_workflows(self, packs: Iterable) -> dict[str, list[str]]:
        """ComfyUI's ``/workflow_templates``: ``{pack: [workflow names without .json]}``."""
        listing = {}
        for name, folder in self.pack_folders(packs).items():
            names = sorted(p.stem for p in folder.iterdir() if p.suffix.lower() == ".json" and p.is_file())
            if names:
                listing[name] = names
        return listing

    def pack_file(self, packs: Iterable, pack: str, name: str) -> Path | None:
        folder = self.pack_folders(packs).get(pack)
        if folder is None:
            return None
        path = safe_join(folder, name)
        return path if path.is_file() else None

    # -- the catalogue -----------------------------------------------------------------------
    def catalogue(self, node_types: Iterable[str], model_folders: FolderPaths, packs: Iterable) -> dict:
        """Every template — Weft's, ComfyUI's (all categories), packs' examples — with what this
        server lacks to run it. Reads files: call it off the event loop."""
        known = frozenset(node_types)
        inventory = ModelInventory.of(model_folders)
        find = self._finder()
        entries: list[dict] = []
        seen: set[str] = set()

        def add(source: str, category: str, name: str, title: str, description: str, path: Path | None,
                workflow_url: str, thumbnail: Path | None, thumbnail_url: str, inputs: list[dict]) -> None:
            needs = self._needs.get(path) if path is not None else None
            entry_id = f"{source}/{name}"
            if needs is None or entry_id in seen:
                return
            seen.add(entry_id)
            entries.append({
                "id": entry_id, "name": name, "title": title, "description": description, "source": source,
                "category": category, "workflow": workflow_url,
                "thumbnail": thumbnail_url if thumbnail is not None else None,
                "missing_nodes": sorted(needs.node_types - known),
                "missing_models": missing_models(needs, inventory), "inputs": inputs})

        indexes = (("weft", self.weft_index()), ("comfyui", self._index("index.json", self.comfyui_folders) or []))
        for source, index in indexes:
            for category in index:
                for template in category["templates"]:
                    name = template.get("name") if isinstance(template, dict) else None
                    if not isinstance(name, str) or not name:
                        continue
                    thumbnail_name = f"{name}-1.{template.get('mediaSubtype') or 'webp'}"
                    add(source, str(category.get("title") or category.get("category") or ""), name,
                        str(template.get("title") or name), str(template.get("description") or ""),
                        find(f"{name}.json"), f"/templates/{quote(name)}.json",
                        find(thumbnail_name), f"/templates/{quote(thumbnail_name)}", _inputs(template, find))
        for pack, folder in self.pack_folders(packs).items():
            for path in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".json" and p.is_file()):
                picture = next((path.with_suffix(s) for s in (".webp", ".png", ".jpg", ".jpeg")
                                if path.with_suffix(s).is_file()), None)
                base = f"/workflow_templates/{quote(pack)}/"
                add(f"pack:{pack}", pack, path.stem, path.stem.replace("_", " "), "", path, base + quote(path.name),
                    picture, base + quote(picture.name) if picture else "", [])
        return {"templates": entries}

    def _finder(self) -> Callable[[str], Path | None]:
        """``resolve`` for the many names of one catalogue: each folder listed once (a safe_join per
        name costs a realpath walk of the deep package path); names with folders take safe_join."""
        listings = [(folder, frozenset(os.listdir(folder))) for folder in self.folders if folder.is_dir()]

        def find(name: str) -> Path | None:
            try:
                if "/" in name:
                    return self.resolve(name)
                check_relative_name(name)
            except UnsafePathError:  # a name in an index that would leave its folder
                return None
            return next((folder / name for folder, names in listings if name in names), None)

        return find


def _inputs(template: dict, find: Callable[[str], Path | None]) -> list[dict]:
    """Input files a template's index entry names (``io.inputs[].file``) that are shipped beside it,
    so the editor can upload them before opening the workflow."""
    io = template.get("io")
    inputs = io.get("inputs") if isinstance(io, dict) else None
    found = []
    for item in inputs if isinstance(inputs, list) else []:
        name = item.get("file") if isinstance(item, dict) else None
        if isinstance(name, str) and find(name) is not None:
            found.append({"file": name, "url": f"/templates/{quote(name)}"})
    return found
