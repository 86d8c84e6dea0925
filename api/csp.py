"""The Content-Security-Policy of the front ends' pages (``/``, ``/weft/`` and their static files).

Scripts come from the server itself ('self') and nowhere else: no inline ``<script>`` or inline
event handler a stored file or a reflected value could smuggle in. A front end whose ``index.html``
carries inline scripts of its own (ComfyUI's frontend has a splash-screen script) gets each one
allowed by its SHA-256 hash, read from the file as it is now. ``eval`` stays allowed
('unsafe-eval'): node packs' extension scripts, which both front ends load and which must run
unchanged, use it (and so does Playwright's string form of ``wait_for_function``); it runs only
code already on the page, which is the server's. WebAssembly may compile ('wasm-unsafe-eval':
three.js decoders of ComfyUI's 3D views), workers may start from blob: URLs. Styles, images and
connections are left open: they do not run code.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path

_INLINE_SCRIPT = re.compile(rb"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_SRC_ATTRIBUTE = re.compile(rb"\bsrc\s*=", re.IGNORECASE)


def inline_script_hashes(html: bytes) -> list[str]:
    """CSP source expressions ('sha256-…') of the inline scripts of a page."""
    hashes = []
    for attributes, body in _INLINE_SCRIPT.findall(html):
        if not _SRC_ATTRIBUTE.search(attributes):
            text = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")  # as the HTML parser sees it
            digest = base64.b64encode(hashlib.sha256(text).digest()).decode()
            hashes.append(f"'sha256-{digest}'")
    return sorted(set(hashes))


@lru_cache(maxsize=16)
def _policy(index: str, mtime_ns: int) -> str:
    try:
        hashes = inline_script_hashes(Path(index).read_bytes())
    except OSError:
        hashes = []
    script_src = " ".join(["'self'", *hashes, "'unsafe-eval'", "'wasm-unsafe-eval'"])
    return f"script-src {script_src}; worker-src 'self' blob:; object-src 'none'; base-uri 'self'"


def front_end_policy(root: Path) -> str:
    """The policy of the pages of the front end in ``root`` (its index's inline scripts hashed)."""
    index = root / "index.html"
    try:
        mtime_ns = index.stat().st_mtime_ns
    except OSError:
        mtime_ns = 0
    return _policy(str(index), mtime_ns)
