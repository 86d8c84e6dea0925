"""Weft's entry point: command-line flags, user folders, the node registry, node packs, the job
store, the worker and the HTTP/WebSocket app. Nothing happens at import time; ``main()`` does it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning (set before torch loads its OpenMP runtime).
# Why: where anything else runs beside the server (a browser, a training job), spinning threads
# wait on each other. Measured on the 2-core build machine with two busy processes beside it:
# the starter model's default workflow (2 threads) took 44 s with spinning threads, 2.9 s with
# sleeping ones. An environment value set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402  (after the OpenMP setting above)
import yaml

from api.app import build_app, make_sender
from api.compat import BinaryEventTypes, PromptServer  # noqa: F401  (packs: `from server import PromptServer`)
from api.connections import ConnectionLimits, raise_file_limit, serve
from api.frontends import FRONT_ENDS, FrontEnd, FrontEndError, resolve_front_end
from api.hub import Hub
from api.log_limits import limit_log_floods
from api.logs import LogBuffer
from api.previews import PREVIEW_METHODS
from api.security import SecurityPolicy, is_loopback
from api.state import AppState, ServerOptions
from graph.cache import OutputCache
from graph.context import InterruptFlag
from graph.executor import Executor
from graph.folders import FolderPaths
from graph.jobs import JobStore
from graph.pool import WorkerPool
from graph.registry import NodeRegistry
from graph.worker import Worker
from ldm.devices import UNET_PRECISIONS, VAE_PRECISIONS, PrecisionOptions, detect_compute
from ldm.engine import COMPILE_MODES, Engine
from ldm.memory import MemoryOptions, VramMode
from ldm.memory.options import GIB
from nodes import register_builtin_nodes
from nodes.custom import PackReport, load_custom_packs, pack_entries, pack_name
from nodes.pack_host import PackHost
from nodes.pack_probe import CACHE_FILE as PROBE_CACHE
from nodes.pack_probe import probe_packs
from nodes.services import NodeOptions, Services
from workers.launch import hub_forwarder, local_launcher, worker_argv

REPO_ROOT = Path(__file__).resolve().parent
log = logging.getLogger("weft")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="server.py", description="Weft: a node-graph studio for latent diffusion.")
    net = parser.add_argument_group("network and safety")
    net.add_argument("--listen", nargs="?", const="0.0.0.0", default="127.0.0.1", metavar="IP[,IP…]",
                     help="addresses to bind, comma-separated (default 127.0.0.1; bare: 0.0.0.0). A non-loopback "
                          "address requires an access token")
    net.add_argument("--port", type=int, default=8188, help="port (default 8188)")
    net.add_argument("--access-token", help="the token clients must send when listening beyond loopback "
                                            "(default: generated and printed at start-up)")
    net.add_argument("--enable-cors-header", nargs="?", const="*", default=None, metavar="ORIGIN",
                     help="allow cross-origin requests from exactly this origin")
    net.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                     help="an extra Host name accepted on loopback (e.g. behind a local proxy)")
    net.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                     help="close a connection that has not sent its request headers within this time (default 10)")
    net.add_argument("--max-upload-size", type=float, default=100, help="largest upload in MB (default 100)")
    net.add_argument("--max-queue-size", type=int, default=1000, help="pending jobs before /prompt answers 429")
    net.add_argument("--max-prompt-nodes", type=int, default=20_000, help="largest prompt accepted, in nodes")
    net.add_argument("--multi-user", action="store_true", help="per-user data selected by the Comfy-User header")
    paths = parser.add_argument_group("folders")
    paths.add_argument("--base-directory", default=str(REPO_ROOT),
                       help="root of models/, input/, output/, temp/, user/, custom_nodes/ (default: the repository)")
    paths.add_argument("--output-directory", help="where generated images are written")
    paths.add_argument("--input-directory", help="where uploaded/input images live")
    paths.add_argument("--temp-directory", help="where previews are written")
    paths.add_argument("--user-directory", help="per-user settings and workflows")
    paths.add_argument("--extra-model-paths-config", nargs="+", default=[], metavar="PATH",
                       help="YAML files listing more model folders (ComfyUI's extra_model_paths.yaml format)")
    paths.add_argument("--database", help="the job queue and history database "
                                          "(default <user-directory>/weft-jobs.sqlite3)")
    cache = parser.add_argument_group("cache")
    group = cache.add_mutually_exclusive_group()
    group.add_argument("--cache-lru", type=int, default=256, metavar="N", help="keep up to N node results across prompts")
    group.add_argument("--cache-none", action="store_true", help="keep no node results across prompts")
    cache.add_argument("--cache-min-free-ram", type=float, default=2.0, metavar="GB",
                       help="drop cached results while less than this much RAM is available (default 2)")
    out = parser.add_argument_group("outputs and previews")
    out.add_argument("--disable-metadata", action="store_true", help="do not embed the prompt/workflow in saved images")
    out.add_argument("--preview-method", default=None, choices=PREVIEW_METHODS,
                     help="how every job's live previews are made, unless the job asks otherwise (default: auto "
                          "for clients that declare they read previews, as Weft's editor and ComfyUI's frontend "
                          "do; none for the others)")
    out.add_argument("--preview-size", type=int, default=512, help="longest side of live previews (default 512)")
    front = parser.add_argument_group("front end")
    front.add_argument("--front-end", default="weft", choices=FRONT_ENDS,
                       help="the browser front end served at / (default weft; comfyui serves the installed "
                            "comfyui-frontend-package). Weft's editor is also always at /weft/")
    front.add_argument("--front-end-root", metavar="DIR",
                       help="serve the built front end in DIR at / instead (overrides --front-end)")
    packs = parser.add_argument_group("node packs")
    packs.add_argument("--disable-all-custom-nodes", action="store_true", help="load no third-party node packs")
    packs.add_argument("--whitelist-custom-nodes", nargs="*", default=None, metavar="NAME",
                       help="with --disable-all-custom-nodes: load these packs anyway")
    packs.add_argument("--skip-custom-nodes", nargs="*", default=[], metavar="NAME", help=argparse.SUPPRESS)
    packs.add_argument("--custom-node-import-timeout", type=float, default=30.0, metavar="SECONDS",
                       help="give up on a pack whose import takes longer (default 30)")
    add_worker_arguments(parser)
    add_engine_arguments(parser)
    parser.add_argument("--verbose", nargs="?", const="DEBUG", default="INFO", help="log level (bare: DEBUG)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the workers are started with the same flags
    return args


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """Where jobs run (docs/scale-out.md)."""
    workers = parser.add_argument_group("workers")
    workers.add_argument("--workers", type=int, default=None, metavar="N",
                         help="worker processes that run jobs (default 1; with --ray one per GPU of the cluster, or "
                              "1); 0 runs jobs in a thread of the server itself, where a node that crashes takes "
                              "the server with it (for debugging)")
    workers.add_argument("--ray", metavar="ADDRESS", default=None,
                         help="run the workers as Ray actors: 'auto' starts a local Ray instance, an address joins "
                              "a cluster (needs `make ray`; docs/scale-out.md)")
    workers.add_argument("--job-timeout", type=float, default=None, metavar="SECONDS",
                         help="end a job that runs longer (by ending its worker process, which is started again)")
    workers.add_argument("--interrupt-grace", type=float, default=10.0, metavar="SECONDS",
                         help="after /interrupt, how long a node may take to stop before its worker process is "
                              "ended (default 10)")


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """ComfyUI's device, VRAM and precision flags (docs/memory.md says what each one does here)."""
    engine = parser.add_argument_group("devices, memory and precision")
    vram = engine.add_mutually_exclusive_group()
    for flag, help_text in (("--gpu-only", "keep every model and every intermediate result on the GPU"),
                            ("--highvram", "load models fully on the GPU; offload only when another needs the room"),
                            ("--normalvram", "load fully when a model fits, else partially (default)"),
                            ("--lowvram", "keep at most --lowvram-weights GB of weights on the GPU, stream the rest"),
                            ("--novram", "keep no weights on the GPU: stream every layer per call"),
                            ("--cpu", "compute everything on the CPU")):
        vram.add_argument(flag, action="store_true", help=help_text)
    engine.add_argument("--lowvram-weights", type=float, default=1.0, metavar="GB",
                        help="resident weights, all models together, in --lowvram (default 1)")
    engine.add_argument("--reserve-vram", type=float, default=None, metavar="GB",
                        help="GPU memory to leave for other programs (default 0.4; 0.6 on Windows)")
    engine.add_argument("--disable-smart-memory", action="store_true",
                        help="take whole models off the GPU after each use instead of keeping them loaded")
    engine.add_argument("--disable-pinned-memory", action="store_true",
                        help="stream weights from pageable host memory (slower, synchronous copies)")
    engine.add_argument("--disable-async-offload", action="store_true",
                        help="no prefetch of the next streamed layer on a side CUDA stream")
    engine.add_argument("--cuda-device", type=int, default=None, metavar="N", help="the CUDA device to use")
    unet = engine.add_mutually_exclusive_group()
    for name in UNET_PRECISIONS:
        unet.add_argument(f"--{name}-unet", dest="unet_precision", action="store_const", const=name,
                          help=f"UNet weights in {name}" + (" (cast per layer to the compute dtype)"
                                                            if name.startswith("fp8") else ""))
    vae = engine.add_mutually_exclusive_group()
    for name in VAE_PRECISIONS:
        vae.add_argument(f"--{name}-vae", dest="vae_precision", action="store_const", const=name,
                         help=f"run the VAE in {name}")
    engine.add_argument("--cpu-vae", action="store_true", help="run the VAE on the CPU")
    engine.add_argument("--force-fp32", action="store_true", help="compute everything in float32")
    engine.add_argument("--compile", nargs="?", const="default", default=None, choices=COMPILE_MODES,
                        help="torch.compile the UNet when fully loaded (bare: default mode; "
                             "reduce-overhead adds CUDA graphs)")
    engine.add_argument("--text-cache", type=int, default=64, metavar="N",
                        help="text encodings kept for re-use (default 64; 0 disables)")


def vram_mode(args: argparse.Namespace) -> VramMode:
    for flag, mode in (("gpu_only", VramMode.GPU_ONLY), ("highvram", VramMode.HIGH), ("lowvram", VramMode.LOW),
                       ("novram", VramMode.NONE), ("cpu", VramMode.CPU)):
        if getattr(args, flag, False):
            return mode
    return VramMode.NORMAL


def build_engine(args: argparse.Namespace) -> Engine:
    """The engine from the device, memory and precision flags."""
    mode = vram_mode(args)
    device = None
    if mode is VramMode.CPU or not torch.cuda.is_available():
        device, mode = "cpu", VramMode.CPU
    elif args.cuda_device is not None:
        device = f"cuda:{args.cuda_device}"
    precision = PrecisionOptions(unet=args.unet_precision, vae=args.vae_precision, cpu_vae=args.cpu_vae,
                                 force_fp32=args.force_fp32)
    memory = MemoryOptions(mode=mode, smart_memory=not args.disable_smart_memory,
                           reserve_bytes=None if args.reserve_vram is None else int(args.reserve_vram * GIB),
                           low_vram_weights=int(args.lowvram_weights * GIB),
                           pin_memory=not args.disable_pinned_memory, prefetch=not args.disable_async_offload)
    return Engine(detect_compute(device, precision=precision), memory, compile_mode=args.compile,
                  text_cache_entries=args.text_cache)


def listen_addresses(args: argparse.Namespace) -> list[str]:
    return [a.strip() for a in str(args.listen).split(",") if a.strip()]


def build_folders(args: argparse.Namespace) -> FolderPaths:
    folders = FolderPaths.under(args.base_directory, input_dir=args.input_directory, output_dir=args.output_directory,
                                temp_dir=args.temp_directory, user_dir=args.user_directory)
    configs = list(args.extra_model_paths_config)
    default_config = Path(args.base_directory) / "extra_model_paths.yaml"
    if default_config.is_file():
        configs.insert(0, str(default_config))
    for config in configs:
        with open(config) as handle:
            folders.apply_extra_paths(yaml.safe_load(handle) or {}, Path(config).resolve().parent)
    folders.ensure()
    return folders


def load_packs(args: argparse.Namespace, host: PackHost, *, probe: bool = False,
               on_import=None) -> list[PackReport]:
    """Import the node packs. With ``probe`` (the server's own import), each pack is first tried
    in a child process (nodes.pack_probe); those that hang or end it are skipped here, and their
    names go to the workers' flags (``--skip-custom-nodes``) so they skip them too."""
    folders = host.services.folders
    pack_folders = [REPO_ROOT / "custom_nodes"]
    if (folders.base / "custom_nodes").resolve() != pack_folders[0]:
        pack_folders.append(folders.base / "custom_nodes")
    whitelist = set(args.whitelist_custom_nodes or ()) if args.disable_all_custom_nodes else None
    skip = dict.fromkeys(args.skip_custom_nodes or (), "skipped: it hung or ended the process at import")
    if probe:
        candidates = [p for p in pack_entries(pack_folders, whitelist) if pack_name(p) not in skip]
        if candidates:
            skip.update(probe_packs(candidates, args.argv, args.custom_node_import_timeout,
                                    folders.user / PROBE_CACHE))
        args.argv = [*args.argv, "--skip-custom-nodes", *skip] if skip else args.argv
    return load_custom_packs(pack_folders, host.registry, timeout=args.custom_node_import_timeout,
                             whitelist=whitelist, host=host, skip=skip, on_import=on_import)


def front_end_of(args: argparse.Namespace) -> FrontEnd:
    try:
        return resolve_front_end(args.front_end, args.front_end_root, REPO_ROOT / "web")
    except FrontEndError as exc:
        raise SystemExit(f"error: {exc}") from exc


@dataclass
class NodeRuntime:
    """What describes and runs nodes in one process: the registry with the built-in nodes and the
    packs, and the services nodes use. The server builds one (for /object_info and validation) and
    so does every worker process (worker.py), from the same flags."""

    folders: FolderPaths
    registry: NodeRegistry
    services: Services
    interrupt: InterruptFlag
    packs: list[PackReport]


def build_node_runtime(args: argparse.Namespace, prompt_server: PromptServer, *, probe: bool = False,
                       on_import=None) -> NodeRuntime:
    folders = build_folders(args)
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    services = Services(folders=folders, options=NodeOptions(disable_metadata=args.disable_metadata,
                                                             preview_method=args.preview_method or "auto",
                                                             preview_size=args.preview_size),
                        engine=build_engine(args))
    interrupt = InterruptFlag()
    # Packs see the process's objects through ComfyUI's facade (nodes.pack_host): built before them.
    packs = load_packs(args, PackHost(services=services, registry=registry, interrupt=interrupt,
                                      prompt_server=prompt_server, args=args), probe=probe, on_import=on_import)
    return NodeRuntime(folders, registry, services, interrupt, packs)


def build_runner(args: argparse.Namespace, runtime: NodeRuntime, store: JobStore, send, hub: Hub):
    """Who runs jobs: worker processes the server supervises (``--workers N``, default 1), or with
    ``--workers 0`` a thread of the server itself (nodes then share its fate; for debugging)."""
    if args.workers == 0 and not args.ray:
        cache = OutputCache(max_entries=0 if args.cache_none else args.cache_lru,
                            min_free_ram_bytes=int(args.cache_min_free_ram * 1024 ** 3))
        executor = Executor(runtime.registry, cache, services=runtime.services, interrupt=runtime.interrupt,
                            max_expanded_nodes=args.max_prompt_nodes)
        engine = runtime.services.engine
        return Worker(store, executor, send, on_free=lambda unload, free: (
            engine.free_memory() if free else engine.unload_all()))
    if args.ray:
        from workers.ray_launch import ray_launcher  # Ray is optional: imported only when asked for

        launcher, size, on_stop = ray_launcher(args.ray, worker_argv(args.argv), args.workers)
    else:
        size, on_stop = args.workers or 1, None
        launcher = local_launcher(worker_argv(args.argv), size)
    return WorkerPool(store, send, launcher, size=size, job_timeout=args.job_timeout,
                      interrupt_grace=args.interrupt_grace, hub_call=hub_forwarder(hub), on_stop=on_stop)


def build_state(args: argparse.Namespace, logs: LogBuffer | None = None) -> AppState:
    front_end = front_end_of(args)
    hub = Hub()
    # The event loop exists before packs load: they may schedule work on PromptServer.instance.loop.
    PromptServer.instance = PromptServer(hub, loop=asyncio.new_event_loop(), preview_size=args.preview_size,
                                         web_root=front_end.root)
    send = PromptServer.instance.observe(make_sender(hub, args.preview_size))
    runtime = build_node_runtime(args, PromptServer.instance, probe=True)
    folders, registry, services, pack_reports = runtime.folders, runtime.registry, runtime.services, runtime.packs
    log.info("compute: %s; memory: %s", services.engine.compute.reason, services.engine.options.mode.value)
    options = ServerOptions(listen=args.listen, port=args.port, max_upload_size=int(args.max_upload_size * 1024 * 1024),
                            preview_size=args.preview_size, web_root=front_end.root, multi_user=args.multi_user,
                            front_end=front_end, editor_root=REPO_ROOT / "web", preview_method=args.preview_method,
                            max_queue_size=args.max_queue_size, max_prompt_nodes=args.max_prompt_nodes)
    store = JobStore(args.database or folders.user / "weft-jobs.sqlite3")
    worker = build_runner(args, runtime, store, send, hub)
    return AppState(registry=registry, store=store, worker=worker, hub=hub, folders=folders,
                    options=options, services=services, packs=pack_reports, logs=logs)


def security_policy(args: argparse.Namespace) -> SecurityPolicy:
    addresses = tuple(listen_addresses(args))
    token = args.access_token
    if token is None and not all(is_loopback(a) for a in addresses):
        token = secrets.token_urlsafe(24)
        print(f"Listening beyond this machine: clients need the access token {token}\n"
              f"  (browser: http://<host>:{args.port}/?token={token}; scripts: 'Authorization: Bearer {token}')",
              flush=True)
    return SecurityPolicy(listen_addresses=addresses, access_token=token, cors_origin=args.enable_cors_header,
                          extra_hosts=frozenset(h.lower() for h in args.allow_host))


def main(argv: list[str] | None = None) -> None:
    # A pack's `import server` gets this running module, not a second copy of it.
    sys.modules.setdefault("server", sys.modules[__name__])
    args = parse_args(argv)
    level = getattr(logging, str(args.verbose).upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(level if level <= logging.DEBUG else logging.WARNING)
    logs = LogBuffer()
    logging.getLogger().addHandler(logs)
    limit_log_floods()  # one message repeated in a flood is written a few times, then counted
    state = build_state(args, logs)
    app = build_app(state, security_policy(args), PromptServer.instance)  # applies what packs added
    hosts = listen_addresses(args)
    front_end = state.options.front_end
    if front_end is not None and not front_end.is_weft:
        what = f"ComfyUI's frontend {front_end.version}" if front_end.kind == "comfyui" else str(front_end.root)
        print(f"Front end at /: {what}; Weft's editor at /weft/", flush=True)
    print(f"Weft is serving http://{hosts[0]}:{args.port}", flush=True)
    raise_file_limit()
    serve(app, hosts, args.port, PromptServer.instance.loop,
          ConnectionLimits(header_timeout=args.header_timeout))


if __name__ == "__main__":
    main(sys.argv[1:])
