"""Which browser front end the server offers at ``/``.

Weft's own editor (``web/``) is the default and is always reachable at ``/weft/``. ComfyUI's
frontend, installed from PyPI as ``comfyui-frontend-package``, can take ``/`` instead
(``--front-end comfyui``), as can any built front end in a folder (``--front-end-root DIR``). A
front end other than Weft's gets Weft's small bridge extension (``web/comfyui-extension/``) in its
``/extensions`` list: a menu entry that opens the same workflow store in Weft's editor.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from api.packages import package_folder

FRONT_ENDS = ("weft", "comfyui")
COMFYUI_FRONTEND_PACKAGE = "comfyui-frontend-package"
EDITOR_MOUNT = "/weft"
BRIDGE_EXTENSION = "comfyui-extension"  # under Weft's web root: its extension for other front ends


class FrontEndError(RuntimeError):
    """The chosen front end cannot be served (not installed, or not a built front end)."""


@dataclass(frozen=True)
class FrontEnd:
    kind: str  # "weft", "comfyui" or "custom"
    root: Path  # the folder served at /
    version: str = ""

    @property
    def is_weft(self) -> bool:
        return self.kind == "weft"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def node_docs_folder() -> Path | None:
    """ComfyUI's node documentation (the ``comfyui-embedded-docs`` package: ``<Node>/<lang>.md``),
    which its frontend shows in a node's help panel; None when the package is not installed."""
    package = package_folder("comfyui_embedded_docs")
    docs = package / "docs" if package is not None else None
    return docs if docs is not None and docs.is_dir() else None


def _require_built(root: Path, what: str) -> Path:
    if not (root / "index.html").is_file():
        raise FrontEndError(f"{what}: {root} has no index.html (is it a built front end?)")
    return root


def resolve_front_end(choice: str, root: str | None, weft_root: Path) -> FrontEnd:
    """The front end for ``--front-end`` / ``--front-end-root`` (the folder wins when given)."""
    if root:
        return FrontEnd("custom", _require_built(Path(root).expanduser().resolve(), "--front-end-root"))
    if choice == "weft":
        return FrontEnd("weft", weft_root)
    if choice == "comfyui":
        package = package_folder("comfyui_frontend_package")
        if package is None:
            raise FrontEndError(f"--front-end comfyui: the {COMFYUI_FRONTEND_PACKAGE} package is not installed "
                                f"(make comfyui-frontend, or pip install {COMFYUI_FRONTEND_PACKAGE})")
        return FrontEnd("comfyui", _require_built(package / "static", "--front-end comfyui"),
                        _version(COMFYUI_FRONTEND_PACKAGE))
    raise FrontEndError(f"unknown front end {choice!r} (choose from {', '.join(FRONT_ENDS)})")
