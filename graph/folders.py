"""User-data folders and the one safe way to turn a user-supplied name into a path.

Models live in ``models/<kind>/`` (several roots per kind are allowed, e.g. from
``--extra-model-paths-config``); images in ``input/``, ``output/`` and ``temp/``; per-user data in
``user/``. Every name that arrives from a request or a workflow (``ckpt_name``, ``image``,
``filename_prefix``, ``subfolder`` …) goes through :func:`safe_join`, which refuses absolute paths,
``..``, backslashes, NUL bytes and symlinks that lead outside the folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: Model folder kinds and the file extensions listed in each.
MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft")
MODEL_KINDS = {
    "checkpoints": MODEL_EXTENSIONS,
    "loras": MODEL_EXTENSIONS,
    "vae": MODEL_EXTENSIONS,
    "text_encoders": MODEL_EXTENSIONS,
    "diffusion_models": MODEL_EXTENSIONS,
    "embeddings": MODEL_EXTENSIONS,
    "controlnet": MODEL_EXTENSIONS,
    "upscale_models": MODEL_EXTENSIONS,
    "vae_approx": MODEL_EXTENSIONS,
    "clip_vision": MODEL_EXTENSIONS,
    "style_models": MODEL_EXTENSIONS,
    "hypernetworks": MODEL_EXTENSIONS,
    "photomaker": MODEL_EXTENSIONS,
    "gligen": MODEL_EXTENSIONS,
    "configs": (".yaml", ".json"),
}
#: ComfyUI's older names for some kinds; a lookup under either name finds the same folders.
KIND_ALIASES = {"clip": "text_encoders", "unet": "diffusion_models"}


class UnsafePathError(ValueError):
    """A user-supplied name would leave its folder, or is not a valid relative name."""


def check_relative_name(name: str) -> list[str]:
    """Split a user-supplied relative name into parts, refusing anything that could escape."""
    if not isinstance(name, str):
        raise UnsafePathError(f"a file name must be a string, got {type(name).__name__}")
    if "\x00" in name:
        raise UnsafePathError("file name contains a NUL byte")
    if "\\" in name:
        raise UnsafePathError(f"file name {name!r} contains a backslash")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafePathError(f"file name {name!r} is absolute")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafePathError(f"file name {name!r} leaves its folder")
    return parts


def safe_join(root: str | os.PathLike, *names: str) -> Path:
    """``root / names…``, resolved, guaranteed to stay inside ``root`` (symlinks included)."""
    parts: list[str] = []
    for name in names:
        if name:
            parts.extend(check_relative_name(name))
    base = Path(os.path.realpath(root))
    target = Path(os.path.realpath(base.joinpath(*parts)))
    if target != base and base not in target.parents:
        raise UnsafePathError(f"{'/'.join(parts)!r} resolves outside its folder")
    return target


@dataclass
class FolderPaths:
    """Where user data lives. Built once by the server from its flags and handed down."""

    base: Path
    input: Path
    output: Path
    temp: Path
    user: Path
    models: dict[str, list[Path]] = field(default_factory=dict)
    #: The default parent of the ``<kind>`` folders (``models/``); None when there is none.
    models_root: Path | None = None
    #: File extensions listed per kind, where set (see :meth:`extensions_of`); an empty set lists
    #: every file, as ComfyUI's ``folder_names_and_paths[kind][1]`` does.
    extensions: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def under(cls, base: str | os.PathLike, *, input_dir=None, output_dir=None, temp_dir=None,
              user_dir=None, models_dir=None) -> FolderPaths:
        base = Path(base).resolve()
        models_root = Path(models_dir) if models_dir else base / "models"
        return cls(
            base=base,
            input=Path(input_dir or base / "input").resolve(),
            output=Path(output_dir or base / "output").resolve(),
            temp=Path(temp_dir or base / "temp").resolve(),
            user=Path(user_dir or base / "user").resolve(),
            models={kind: [(models_root / kind).resolve()] for kind in MODEL_KINDS},
            models_root=models_root.resolve(),
        )

    def ensure(self) -> None:
        for folder in (self.input, self.output, self.temp, self.user):
            folder.mkdir(parents=True, exist_ok=True)
        for roots in self.models.values():
            for root in roots:
                root.mkdir(parents=True, exist_ok=True)

    def add_model_root(self, kind: str, root: str | os.PathLike, *, first: bool = False) -> None:
        kind = KIND_ALIASES.get(kind, kind)
        roots = self.models.setdefault(kind, [])
        path = Path(root).resolve()
        if path not in roots:
            roots.insert(0, path) if first else roots.append(path)

    def apply_extra_paths(self, config: dict, config_dir: Path) -> None:
        """Add model folders from an ``extra_model_paths.yaml`` document (ComfyUI's format).

        Each section may give ``base_path`` (relative to the YAML file) and ``is_default`` (its
        folders go first); every other key is a folder kind with newline-separated paths relative
        to ``base_path``.
        """
        if not isinstance(config, dict):
            raise ValueError("extra model paths: the document must be a mapping of sections")
        for section in config.values():
            if not isinstance(section, dict):
                continue
            base = Path(os.path.expanduser(str(section.get("base_path", "")) or "."))
            if not base.is_absolute():
                base = config_dir / base
            first = bool(section.get("is_default"))
            for kind, value in section.items():
                if kind in ("base_path", "is_default") or value is None:
                    continue
                for line in str(value).splitlines():
                    line = line.strip()
                    if line:
                        self.add_model_root(kind, base / os.path.expanduser(line), first=first)

    def model_roots(self, kind: str) -> list[Path]:
        kind = KIND_ALIASES.get(kind, kind)
        if kind not in self.models:
            raise KeyError(f"unknown model folder {kind!r}")
        return self.models[kind]

    def extensions_of(self, kind: str) -> set[str]:
        """The file extensions listed for ``kind`` (lower case, with the dot) as one mutable set:
        what changes it changes the listing. Kinds start with :data:`MODEL_KINDS`' extensions
        (:data:`MODEL_EXTENSIONS` for kinds added later)."""
        kind = KIND_ALIASES.get(kind, kind)
        if kind not in self.extensions:
            self.extensions[kind] = set(MODEL_KINDS.get(kind, MODEL_EXTENSIONS))
        return self.extensions[kind]

    def list_models(self, kind: str) -> list[str]:
        """Relative names (with ``/``) of the model files of one kind, recursively, sorted."""
        kind = KIND_ALIASES.get(kind, kind)
        roots = self.model_roots(kind)
        extensions = tuple(sorted(self.extensions_of(kind)))
        names: set[str] = set()
        for root in roots:
            names.update(list_files(root, extensions))
        return sorted(names, key=str.lower)

    def model_path(self, kind: str, name: str) -> Path:
        """The file for a model name; raises UnsafePathError or FileNotFoundError."""
        for root in self.model_roots(kind):
            path = safe_join(root, name)
            if path.is_file():
                return path
        raise FileNotFoundError(f"{kind} model {name!r} not found")

    def folder_for(self, folder_type: str) -> Path:
        """The ``input`` / ``output`` / ``temp`` folder by the name used in requests."""
        folders = {"input": self.input, "output": self.output, "temp": self.temp}
        if folder_type not in folders:
            raise UnsafePathError(f"unknown folder type {folder_type!r}")
        return folders[folder_type]


FOLDER_TYPES = ("input", "output", "temp")


def split_annotated_name(name: str, default_type: str) -> tuple[str, str]:
    """ComfyUI's ``name.png [output]`` annotation: (name, folder type)."""
    for folder_type in FOLDER_TYPES:
        suffix = f" [{folder_type}]"
        if name.endswith(suffix):
            return name[: -len(suffix)], folder_type
    return name, default_type


#: Temporary files of graph.atomic's writes: seeing one means a write is in flight.
ATOMIC_TEMP_PREFIX = ".weft-"
LISTING_ATTEMPTS = 3


def list_files(root: Path, extensions: tuple[str, ...] | None = None, *, recursive: bool = True) -> list[str]:
    """Files under ``root`` (recursively unless told, following no symlink out of it, hidden ones
    left out) as ``/``-joined names.

    A directory read while a file in it is atomically replaced may miss that file's name (POSIX
    leaves it unspecified), and the replacement's temporary file shows the write is in flight: a
    listing that saw one is read again, a few times at most."""
    for _ in range(LISTING_ATTEMPTS):
        names, saw_write = _scan(root, extensions, recursive)
        if not saw_write:
            break
    return names


def _scan(root: Path, extensions: tuple[str, ...] | None, recursive: bool) -> tuple[list[str], bool]:
    out: list[str] = []
    saw_write = False
    if not root.is_dir():
        return out, saw_write
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        for filename in filenames:
            if filename.startswith("."):
                saw_write = saw_write or filename.startswith(ATOMIC_TEMP_PREFIX)
                continue
            if extensions and not filename.lower().endswith(extensions):
                continue
            full = os.path.join(dirpath, filename)
            real = os.path.realpath(full)
            if not real.startswith(real_root + os.sep):
                continue
            out.append(os.path.relpath(full, root).replace(os.sep, "/"))
    return out, saw_write
