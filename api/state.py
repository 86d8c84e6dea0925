"""Everything the handlers share, built once by server.py and stored under a typed app key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from graph.executor import Executor
from graph.folders import FolderPaths
from graph.jobs import JobStore
from graph.registry import NodeRegistry
from graph.worker import Worker

from .hub import Hub


@dataclass
class ServerOptions:
    listen: str = "127.0.0.1"
    port: int = 8188
    max_upload_size: int = 100 * 1024 * 1024
    preview_size: int = 512
    web_root: Path | None = None


@dataclass
class AppState:
    registry: NodeRegistry
    store: JobStore
    executor: Executor
    worker: Worker
    hub: Hub
    folders: FolderPaths
    options: ServerOptions = field(default_factory=ServerOptions)
    services: Any = None
    packs: list = field(default_factory=list)  # nodes.custom.PackReport per third-party pack


STATE = web.AppKey("weft_state", AppState)


def state_of(request: web.Request) -> AppState:
    return request.app[STATE]
