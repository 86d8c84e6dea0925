"""The facade's one piece of state: the :class:`nodes.pack_host.PackHost` it translates onto.

``nodes.pack_host.install_comfy_facade`` binds it before any pack is imported. Every facade module
reaches Weft's objects through :func:`host`, so a test can bind a host with temporary folders.
"""

from __future__ import annotations

from nodes.pack_host import PackHost

_host: PackHost | None = None


def bind(host: PackHost) -> None:
    global _host
    _host = host


def host() -> PackHost:
    if _host is None:
        raise RuntimeError("ComfyUI's facade is not bound to a Weft server "
                           "(nodes.pack_host.install_comfy_facade was not called)")
    return _host
