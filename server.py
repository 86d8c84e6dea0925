"""Weft's entry point: command-line flags, user folders, the node registry, the job store, the
worker and the HTTP/WebSocket app. Nothing happens at import time; ``main()`` does it all."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

from api.app import build_app, make_sender
from api.hub import Hub
from api.state import AppState, ServerOptions
from graph.cache import OutputCache
from graph.executor import Executor
from graph.folders import FolderPaths
from graph.jobs import JobStore
from graph.registry import NodeRegistry
from graph.worker import Worker
from nodes import register_builtin_nodes
from nodes.custom import PackReport, load_custom_packs
from nodes.services import NodeOptions, Services

REPO_ROOT = Path(__file__).resolve().parent
log = logging.getLogger("weft")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="server.py", description="Weft: a node-graph studio for latent diffusion.")
    net = parser.add_argument_group("network")
    net.add_argument("--listen", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    net.add_argument("--port", type=int, default=8188, help="port (default 8188)")
    net.add_argument("--max-upload-size", type=float, default=100, help="largest request body in MB (default 100)")
    paths = parser.add_argument_group("folders")
    paths.add_argument("--base-directory", default=str(REPO_ROOT),
                       help="root of models/, input/, output/, temp/, user/ (default: the repository)")
    paths.add_argument("--output-directory", help="where generated images are written")
    paths.add_argument("--input-directory", help="where uploaded/input images live")
    paths.add_argument("--temp-directory", help="where previews are written")
    paths.add_argument("--user-directory", help="per-user settings and workflows")
    paths.add_argument("--database", help="the job queue and history database (default <user-directory>/weft-jobs.sqlite3)")
    cache = parser.add_argument_group("cache")
    group = cache.add_mutually_exclusive_group()
    group.add_argument("--cache-lru", type=int, default=256, metavar="N", help="keep up to N node results across prompts")
    group.add_argument("--cache-none", action="store_true", help="keep no node results across prompts")
    cache.add_argument("--cache-min-free-ram", type=float, default=2.0, metavar="GB",
                       help="drop cached results while less than this much RAM is available (default 2)")
    out = parser.add_argument_group("outputs and previews")
    out.add_argument("--disable-metadata", action="store_true", help="do not embed the prompt/workflow in saved images")
    out.add_argument("--preview-method", default="auto", choices=["none", "auto", "latent2rgb", "taesd"])
    out.add_argument("--preview-size", type=int, default=512, help="longest side of live previews (default 512)")
    packs = parser.add_argument_group("node packs")
    packs.add_argument("--disable-all-custom-nodes", action="store_true", help="load no third-party node packs")
    packs.add_argument("--whitelist-custom-nodes", nargs="*", default=None, metavar="NAME",
                       help="with --disable-all-custom-nodes: load these packs anyway")
    parser.add_argument("--verbose", nargs="?", const="DEBUG", default="INFO", help="log level (bare: DEBUG)")
    return parser.parse_args(argv)


def build_state(args: argparse.Namespace) -> AppState:
    folders = FolderPaths.under(args.base_directory, input_dir=args.input_directory, output_dir=args.output_directory,
                                temp_dir=args.temp_directory, user_dir=args.user_directory)
    folders.ensure()
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    pack_reports = load_packs(args, folders, registry)
    options = ServerOptions(listen=args.listen, port=args.port, max_upload_size=int(args.max_upload_size * 1024 * 1024),
                            preview_size=args.preview_size, web_root=REPO_ROOT / "web")
    services = Services(folders=folders, options=NodeOptions(disable_metadata=args.disable_metadata,
                                                             preview_method=args.preview_method,
                                                             preview_size=args.preview_size))
    cache = OutputCache(max_entries=0 if args.cache_none else args.cache_lru,
                        min_free_ram_bytes=int(args.cache_min_free_ram * 1024 ** 3))
    hub = Hub()
    executor = Executor(registry, cache, services=services)
    store = JobStore(args.database or folders.user / "weft-jobs.sqlite3")
    worker = Worker(store, executor, make_sender(hub, args.preview_size))
    return AppState(registry=registry, store=store, executor=executor, worker=worker, hub=hub, folders=folders,
                    options=options, services=services, packs=pack_reports)


def load_packs(args: argparse.Namespace, folders: FolderPaths, registry: NodeRegistry) -> list[PackReport]:
    pack_folders = [REPO_ROOT / "custom_nodes"]
    if (folders.base / "custom_nodes").resolve() != pack_folders[0]:
        pack_folders.append(folders.base / "custom_nodes")
    whitelist = None
    if args.disable_all_custom_nodes:
        whitelist = set(args.whitelist_custom_nodes or ())
    return load_custom_packs(pack_folders, registry, whitelist=whitelist)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    level = getattr(logging, str(args.verbose).upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(level if level <= logging.DEBUG else logging.WARNING)
    state = build_state(args)
    app = build_app(state)
    print(f"Weft is serving http://{args.listen}:{args.port}", flush=True)
    web.run_app(app, host=args.listen, port=args.port, print=None)


if __name__ == "__main__":
    main(sys.argv[1:])
