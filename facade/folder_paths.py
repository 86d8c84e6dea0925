"""ComfyUI's ``folder_paths`` for node packs: a view onto the server's :class:`graph.folders.FolderPaths`.

Every name reads the bound folders when it is used, so ``folder_paths.models_dir`` read at a pack's
import and ``get_filename_list("checkpoints")`` called in ``INPUT_TYPES`` see what Weft sees, and what
a pack adds (``add_model_folder_path``, ``folder_names_and_paths[kind] = (paths, extensions)``,
``folder_names_and_paths[kind][0].append(path)``) lands in Weft's folders: the built-in loaders and
``/models`` list it too.

Where Weft differs, on purpose:

* names from a pack's caller (``get_full_path``, ``get_annotated_filepath``) go through
  :func:`graph.folders.safe_join`: ``..``, absolute paths, backslashes and symlinks out of the folder
  are refused (``get_full_path`` answers None, the path builders raise ``UnsafePathError``, a
  ``ValueError``) instead of being normalised into the folder;
* file lists are not cached (``filename_list_cache`` stays empty, ``cache_helper`` is a no-op);
* each kind has its own extension set, so adding ``.gguf`` to one kind does not add it to all the
  kinds that share ``supported_pt_extensions`` in ComfyUI.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import sys
import time
import types
from collections.abc import Collection, MutableMapping, MutableSequence
from pathlib import Path

from _weft_binding import host
from graph.folders import KIND_ALIASES, FolderPaths, UnsafePathError, safe_join, split_annotated_name
from graph.output_files import resolve_save_target

#: ComfyUI's default model-file extensions (a kind a pack adds with it lists these files).
supported_pt_extensions: set[str] = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}

#: Kinds ComfyUI defines that Weft's folders may lack, with their extensions; added to the bound
#: folders (``models/<kind>``, not created on disk) the first time the facade reads them.
COMFY_KINDS: dict[str, frozenset[str]] = {
    **{kind: frozenset(supported_pt_extensions) for kind in (
        "style_models", "gligen", "hypernetworks", "photomaker", "model_patches", "audio_encoders",
        "latent_upscale_models")},
    "classifiers": frozenset({""}),
    "diffusers": frozenset({"folder"}),
}
#: ComfyUI's older kind names (``map_legacy``); Weft's folders resolve the same aliases.
LEGACY_KINDS = dict(KIND_ALIASES)
SYSTEM_USER_PREFIX = "__"
#: Content types of extensions that ``mimetypes`` does not know everywhere.
EXTRA_CONTENT_TYPES = {"webp": "image", "fbx": "model", "glb": "model", "gltf": "model", "obj": "model"}

log = logging.getLogger(__name__)


def _folders() -> FolderPaths:
    folders = host().services.folders
    root = folders.models_root or folders.base / "models"
    for kind, extensions in COMFY_KINDS.items():
        if kind not in folders.models:
            folders.models[kind] = [(root / kind).resolve()]
            folders.extensions.setdefault(kind, set(extensions))
    return folders


def _custom_nodes_dir() -> Path:
    return _folders().base / "custom_nodes"


# -- folder_names_and_paths: {kind: ([paths], {extensions})} as live views -----------------------------

class _PathList(MutableSequence):
    """One kind's model folders as ComfyUI's list of strings; edits change Weft's list."""

    def __init__(self, roots: list[Path]) -> None:
        self._roots = roots

    def __len__(self) -> int:
        return len(self._roots)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [str(p) for p in self._roots[index]]
        return str(self._roots[index])

    def __setitem__(self, index, value) -> None:
        if isinstance(index, slice):
            self._roots[index] = [Path(v).resolve() for v in value]
        else:
            self._roots[index] = Path(value).resolve()

    def __delitem__(self, index) -> None:
        del self._roots[index]

    def insert(self, index: int, value) -> None:
        path = Path(value).resolve()
        if path not in self._roots:
            self._roots.insert(index, path)

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, (list, tuple, _PathList)) else NotImplemented

    def __repr__(self) -> str:
        return repr(list(self))


class _FolderTable(MutableMapping):
    """ComfyUI's ``folder_names_and_paths`` over the bound folders: ``table[kind]`` is
    ``(paths, extensions)`` where both are Weft's own objects (the list through a str view)."""

    def __init__(self, folders: FolderPaths) -> None:
        self._folders = folders

    def _kind(self, kind: str) -> str:
        return map_legacy(kind)

    def __getitem__(self, kind: str):
        kind = self._kind(kind)
        if kind in self._folders.models:
            return _PathList(self._folders.models[kind]), self._folders.extensions_of(kind)
        if kind == "custom_nodes":
            return _PathList([_custom_nodes_dir()]), set()
        raise KeyError(kind)

    def __setitem__(self, kind: str, value) -> None:
        paths, extensions = value
        kind = self._kind(kind)
        self._folders.models[kind] = [Path(p).resolve() for p in paths]
        self._folders.extensions[kind] = extensions if isinstance(extensions, set) else set(extensions)

    def __delitem__(self, kind: str) -> None:
        kind = self._kind(kind)
        del self._folders.models[kind]
        self._folders.extensions.pop(kind, None)

    def __contains__(self, kind) -> bool:
        return isinstance(kind, str) and (self._kind(kind) in self._folders.models or kind == "custom_nodes")

    def __iter__(self):
        yield from list(self._folders.models)
        if "custom_nodes" not in self._folders.models:
            yield "custom_nodes"

    def __len__(self) -> int:
        return len(self._folders.models) + ("custom_nodes" not in self._folders.models)


class _NoCache(MutableMapping):
    """``filename_list_cache``: Weft lists folders afresh each time, so this holds nothing."""

    def __getitem__(self, key):
        raise KeyError(key)

    def __setitem__(self, key, value) -> None:
        pass

    def __delitem__(self, key) -> None:
        raise KeyError(key)

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


class CacheHelper:
    """ComfyUI's scoped file-list cache; a no-op here since nothing is cached."""

    def __init__(self) -> None:
        self.cache: dict = {}
        self.active = False

    def get(self, key, default=None):
        return default

    def set(self, key, value) -> None:
        pass

    def clear(self) -> None:
        self.cache.clear()

    def __enter__(self) -> "CacheHelper":
        return self

    def __exit__(self, *exc) -> None:
        pass


filename_list_cache = _NoCache()
cache_helper = CacheHelper()
extension_mimetypes_cache = dict(EXTRA_CONTENT_TYPES)

_LIVE = {
    "base_path": lambda: str(_folders().base),
    "models_dir": lambda: str(_folders().models_root or _folders().base / "models"),
    "output_directory": lambda: str(_folders().output),
    "input_directory": lambda: str(_folders().input),
    "temp_directory": lambda: str(_folders().temp),
    "user_directory": lambda: str(_folders().user),
    "folder_names_and_paths": lambda: _FolderTable(_folders()),
}


def __getattr__(name: str):
    """Module attributes that are module globals in ComfyUI, read from the bound folders."""
    if name in _LIVE:
        return _LIVE[name]()
    raise AttributeError(f"module 'folder_paths' has no attribute {name!r}")


class _Module(types.ModuleType):
    """Assigning ``folder_paths.output_directory`` (as some packs and scripts do) moves Weft's folder."""

    def __setattr__(self, name: str, value) -> None:
        setter = {"output_directory": set_output_directory, "input_directory": set_input_directory,
                  "temp_directory": set_temp_directory, "user_directory": set_user_directory}.get(name)
        if setter is not None:
            setter(value)
        else:
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Module


# -- directories ---------------------------------------------------------------------------------------

def map_legacy(folder_name: str) -> str:
    return LEGACY_KINDS.get(folder_name, folder_name)


def get_output_directory() -> str:
    return str(_folders().output)


def get_input_directory() -> str:
    return str(_folders().input)


def get_temp_directory() -> str:
    return str(_folders().temp)


def get_user_directory() -> str:
    return str(_folders().user)


def set_output_directory(output_dir: str) -> None:
    _folders().output = Path(output_dir).resolve()


def set_input_directory(input_dir: str) -> None:
    _folders().input = Path(input_dir).resolve()


def set_temp_directory(temp_dir: str) -> None:
    _folders().temp = Path(temp_dir).resolve()


def set_user_directory(user_dir: str) -> None:
    _folders().user = Path(user_dir).resolve()


def get_directory_by_type(type_name: str) -> str | None:
    """The ``input`` / ``output`` / ``temp`` folder; None for any other name."""
    folders = _folders()
    found = {"input": folders.input, "output": folders.output, "temp": folders.temp}.get(type_name)
    return None if found is None else str(found)


def get_system_user_directory(name: str = "system") -> str:
    """``user/__<name>``: a folder for a pack's internal data that no HTTP route serves."""
    if not name or not isinstance(name, str):
        raise ValueError("a system user name must be a non-empty string")
    if name.startswith("_") or not name.replace("_", "").isalnum():
        raise ValueError(f"invalid system user name {name!r}: letters, digits and inner underscores only")
    return os.path.join(get_user_directory(), SYSTEM_USER_PREFIX + name)


def get_public_user_directory(user_id: str) -> str | None:
    """``user/<user_id>``, or None for a system user or a name that would leave the folder."""
    if not user_id or not isinstance(user_id, str) or user_id.startswith(SYSTEM_USER_PREFIX):
        return None
    try:
        return str(safe_join(_folders().user, user_id))
    except UnsafePathError as error:
        log.warning("folder_paths.get_public_user_directory(%r) refused: %s", user_id, error)
        return None


def get_input_subfolders() -> list[str]:
    """Every folder below the input folder, ``/``-joined, sorted."""
    root = _folders().input
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        for dirname in dirnames:
            found.append(os.path.relpath(os.path.join(dirpath, dirname), root).replace(os.sep, "/"))
    return sorted(found)


# -- annotated names (``name.png [output]``) -------------------------------------------------------------

def annotated_filepath(name: str) -> tuple[str, str | None]:
    """``(name without annotation, its folder)``; the folder is None without an annotation."""
    bare, folder_type = split_annotated_name(name, "")
    return (name, None) if not folder_type else (bare, get_directory_by_type(folder_type))


def get_annotated_filepath(name: str, default_dir: str | None = None) -> str:
    """The path of an (annotated) input name; raises ``UnsafePathError`` for a name that leaves its folder."""
    bare, folder = annotated_filepath(name)
    return str(safe_join(folder or default_dir or get_input_directory(), bare))


def exists_annotated_filepath(name) -> bool:
    try:
        return os.path.exists(get_annotated_filepath(name))
    except (UnsafePathError, TypeError):
        return False


# -- model folders -----------------------------------------------------------------------------------------

def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    """Add a folder to a kind (first with ``is_default``); a new kind lists every file, as in ComfyUI."""
    folders = _folders()
    kind = map_legacy(folder_name)
    if kind not in folders.models:
        folders.extensions.setdefault(kind, set())
    roots = folders.models.setdefault(kind, [])
    path = Path(full_folder_path).resolve()
    if path in roots:
        if is_default and roots[0] != path:
            roots.remove(path)
            roots.insert(0, path)
    elif is_default:
        roots.insert(0, path)
    else:
        roots.append(path)


def get_folder_paths(folder_name: str) -> list[str]:
    """A copy of a kind's folders (``KeyError`` for an unknown kind)."""
    paths, _ = _FolderTable(_folders())[folder_name]
    return list(paths)


def get_filename_list(folder_name: str) -> list[str]:
    """The files of a kind, as the built-in loaders list them (``KeyError`` for an unknown kind)."""
    kind = map_legacy(folder_name)
    if kind == "custom_nodes" and kind not in _folders().models:
        return filter_files_extensions(recursive_search(str(_custom_nodes_dir()), [".git"])[0], ())
    return list(_folders().list_models(kind))


def get_filename_list_(folder_name: str) -> tuple[list[str], dict[str, float], float]:
    """ComfyUI's uncached listing: ``(names, {folder: mtime}, time)``."""
    folders = {}
    for root in get_folder_paths(folder_name):
        if os.path.isdir(root):
            folders[root] = os.path.getmtime(root)
    return get_filename_list(folder_name), folders, time.perf_counter()


def cached_filename_list_(folder_name: str) -> None:
    """Nothing is cached: always None."""
    return None


def get_full_path(folder_name: str, filename: str) -> str | None:
    """The file ``filename`` of a kind, or None when the kind or file is unknown or the name unsafe."""
    try:
        return str(_folders().model_path(map_legacy(folder_name), filename))
    except UnsafePathError as error:
        log.warning("folder_paths.get_full_path(%r, %r) refused: %s", folder_name, filename, error)
        return None
    except (KeyError, FileNotFoundError, TypeError):
        return None  # ComfyUI's answer for an unknown kind or file


def get_full_path_or_raise(folder_name: str, filename: str) -> str:
    found = get_full_path(folder_name, filename)
    if found is None:
        raise FileNotFoundError(f"no file {filename!r} among the {folder_name!r} models")
    return found


def recursive_search(directory: str, excluded_dir_names: list[str] | None = None) -> tuple[list[str], dict[str, float]]:
    """Files below ``directory`` (relative names) and the modification time of each folder."""
    if not os.path.isdir(directory):
        return [], {}
    excluded = set(excluded_dir_names or ())
    files: list[str] = []
    folders = {directory: os.path.getmtime(directory)}
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if d not in excluded]
        for dirname in dirnames:
            path = os.path.join(dirpath, dirname)
            try:
                folders[path] = os.path.getmtime(path)
            except OSError:
                continue
        files.extend(os.path.relpath(os.path.join(dirpath, f), directory) for f in filenames)
    return files, folders


def filter_files_extensions(files: Collection[str], extensions: Collection[str]) -> list[str]:
    """Sorted ``files`` whose extension is in ``extensions`` (every file when it is empty)."""
    return sorted(f for f in files if not extensions or os.path.splitext(f)[-1].lower() in extensions)


def filter_files_content_types(files: list[str], content_types: Collection[str]) -> list[str]:
    """``files`` whose MIME type's major part (image, video, audio, model) is in ``content_types``."""
    kept = []
    for name in files:
        extension = name.rsplit(".", 1)[-1].lower()
        kind = EXTRA_CONTENT_TYPES.get(extension)
        if kind is None:
            mime, _ = mimetypes.guess_type(name, strict=False)
            kind = mime.split("/")[0] if mime else None
        if kind in content_types:
            kept.append(name)
    return kept


# -- saving ------------------------------------------------------------------------------------------------

def get_save_image_path(filename_prefix: str, output_dir: str, image_width=0, image_height=0):
    """``(folder, filename, counter, subfolder, prefix)`` for numbered files ``<filename>_<counter:05>_.ext``.

    ``%width%``, ``%height%`` and the date variables are expanded; a prefix that would leave
    ``output_dir`` raises ``UnsafePathError``. The folder is created.
    """
    target = resolve_save_target(output_dir, filename_prefix, int(image_width), int(image_height))
    prefix = "/".join(filter(None, (target.subfolder, target.filename)))
    return str(target.folder), target.filename, target.counter, target.subfolder, prefix
