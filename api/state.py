"""Everything the handlers share, built once by server.py and stored under a typed app key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from graph.executor import Executor
from graph.folders import FolderPaths
from graph.job_views import FinishedJobs
from graph.jobs import JobStore
from graph.pool import WorkerPool
from graph.registry import NodeRegistry
from graph.worker import Worker

from .frontends import FrontEnd
from .hub import Hub
from .images import ViewConversions
from .templates import TemplateLibrary


@dataclass
class ServerOptions:
    listen: str = "127.0.0.1"
    port: int = 8188
    max_upload_size: int = 100 * 1024 * 1024
    preview_size: int = 512
    web_root: Path | None = None  # the front end served at /
    front_end: FrontEnd | None = None  # what web_root holds (None: no front end, e.g. in tests)
    editor_root: Path | None = None  # Weft's own editor, also served at /weft/
    multi_user: bool = False
    max_queue_size: int = 1000  # pending jobs; past it POST /prompt answers 429
    max_prompt_nodes: int = 20_000
    max_json_depth: int = 64
    max_json_bytes: int = 64 * 1024 * 1024
    preview_method: str | None = None  # --preview-method; None: per client (api.previews)


@dataclass
class AppState:
    registry: NodeRegistry
    store: JobStore
    worker: Worker | WorkerPool  # runs the jobs: in worker processes (WorkerPool) or a thread (Worker)
    hub: Hub
    folders: FolderPaths
    executor: Executor | None = None  # the server's own, when jobs run in a thread of it
    options: ServerOptions = field(default_factory=ServerOptions)
    services: Any = None
    packs: list = field(default_factory=list)  # nodes.custom.PackReport per third-party pack
    logs: Any = None  # api.logs.LogBuffer
    templates: TemplateLibrary | None = None  # made on first use (api.routes.templates)
    finished_jobs: FinishedJobs = field(default_factory=FinishedJobs)  # /jobs' records of the history
    view_conversions: ViewConversions = field(default_factory=ViewConversions)  # /view's pool and cache


STATE = web.AppKey("weft_state", AppState)


def state_of(request: web.Request) -> AppState:
    return request.app[STATE]
