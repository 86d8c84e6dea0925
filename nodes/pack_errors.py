"""Why a node pack failed to import, in words a user can act on.

A missing third-party module gets the ``pip install`` line that fixes it, read from the pack's
``requirements.txt`` where a line names the distribution; a missing ComfyUI internal is named as
one Weft does not provide.
"""

from __future__ import annotations

import re
from pathlib import Path

#: Top-level modules of ComfyUI itself (what the facade provides, or deliberately does not).
COMFY_MODULES = frozenset({"comfy", "comfy_api", "comfy_extras", "comfy_execution", "comfy_config", "folder_paths",
                           "latent_preview", "node_helpers", "execution", "server", "nodes", "app", "utils",
                           "comfyui_version", "cuda_malloc", "new_updater", "protocol", "main", "api_server",
                           "middleware", "alembic_db"})

#: Import names whose distribution is called otherwise on PyPI.
DISTRIBUTIONS = {"cv2": "opencv-python", "PIL": "pillow", "skimage": "scikit-image", "sklearn": "scikit-learn",
                 "yaml": "pyyaml", "google.protobuf": "protobuf", "fitz": "pymupdf", "bs4": "beautifulsoup4",
                 "dateutil": "python-dateutil", "attr": "attrs", "Crypto": "pycryptodome", "git": "gitpython",
                 "mediapipe": "mediapipe", "onnxruntime": "onnxruntime", "insightface": "insightface",
                 "dotenv": "python-dotenv", "magic": "python-magic", "docx": "python-docx", "jwt": "pyjwt"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_for(module: str, pack_dir: Path | None) -> str | None:
    """The pack's requirements.txt line that installs ``module``'s distribution, if one does."""
    if pack_dir is None or not (pack_dir / "requirements.txt").is_file():
        return None
    wanted = {_normalise(module), _normalise(DISTRIBUTIONS.get(module, module))}
    for line in (pack_dir / "requirements.txt").read_text(errors="replace").splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match and _normalise(match.group(1)) in wanted:
            return line
    return None


def describe_failure(error: BaseException, pack_dir: Path | None) -> dict:
    """``{"kind", "module"?, "pip"?}`` for a failed import: kind is ``missing_dependency``,
    ``comfyui_internal``, ``timeout`` or ``error``."""
    if isinstance(error, TimeoutError):
        return {"kind": "timeout"}
    if isinstance(error, ModuleNotFoundError) and error.name:
        top = error.name.split(".", 1)[0]
        if top in COMFY_MODULES:
            return {"kind": "comfyui_internal", "module": error.name}
        line = requirement_for(top, pack_dir)
        if line is not None:
            pip = f"pip install {line!s}" if " " not in line else f"pip install '{line}'"
        elif pack_dir is not None and (pack_dir / "requirements.txt").is_file():
            pip = f"pip install -r {pack_dir / 'requirements.txt'}"
        else:
            pip = f"pip install {DISTRIBUTIONS.get(top, top)}"
        return {"kind": "missing_dependency", "module": error.name, "pip": pip}
    if isinstance(error, ImportError) and error.name and error.name.split(".", 1)[0] in COMFY_MODULES:
        return {"kind": "comfyui_internal", "module": error.name}
    return {"kind": "error"}
