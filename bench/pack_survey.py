"""Survey: does Weft import the most-starred real ComfyUI node packs?

For each pack of ``bench/packs.json`` found under ``--src`` (one folder per pack, named as in the
list), one subprocess of ``--python`` (a scratch environment with the packs' requirements; see
docs/node-packs.md) builds a Weft studio in a temporary folder laid out like a ComfyUI root --
FolderPaths, built-in nodes, a CPU engine, a PackHost -- copies the pack into its ``custom_nodes/``
and imports it through Weft's real loader (``nodes.custom.load_custom_packs``). The parent
classifies each failure (ComfyUI facade module or name missing, third-party module missing,
other), writes ``bench/results/packs.json`` and prints a Markdown table and the facade modules
and names that stop packs, most frequent first.

``--usage FILE`` also scans every pack's source (Python's ``ast``, nothing is imported) for the
ComfyUI names it uses -- ``import comfy.x``, ``from comfy.x import y``, ``folder_paths.f``,
``comfy.model_management.f``, ``nodes.X`` and the like, through aliases -- and writes
``module.name -> number of packs`` to FILE.

    .venv/bin/python -m bench.pack_survey --src /work/packs/src --python /work/packs/venv/bin/python \\
        --usage /work/packs/facade_usage.txt
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACK_LIST = REPO_ROOT / "bench" / "packs.json"
RESULTS = REPO_ROOT / "bench" / "results" / "packs.json"

#: Top-level module names of ComfyUI's own tree: what a pack imports from ComfyUI, and so what
#: Weft's facade (or Weft's ``nodes`` package) has to answer.
FACADE_TOPS = frozenset({
    "comfy", "comfy_extras", "comfy_execution", "comfy_api", "comfy_api_nodes", "comfy_config",
    "folder_paths", "latent_preview", "node_helpers", "execution", "server", "nodes", "app", "utils",
    "protocol", "comfyui_version", "cuda_malloc", "main", "new_updater", "api_server", "middleware",
})
#: Of those, the names a pack may also have as a module of its own (``utils.py``, ``nodes.py`` …).
AMBIGUOUS_TOPS = frozenset({"nodes", "utils", "app", "main", "server", "execution", "protocol",
                            "middleware"})

#: ComfyUI packages whose lower-case members are modules (used when no module list is given).
PACKAGES = frozenset({"comfy", "comfy_extras", "comfy_execution", "comfy_api", "comfy.ldm",
                      "comfy.k_diffusion", "comfy.text_encoders", "comfy.ldm.modules"})

#: Import name -> distribution names, where they differ (compared after normalising - . _).
IMPORT_TO_DIST = {
    "cv2": ["opencv-python", "opencv-python-headless", "opencv-contrib-python",
            "opencv-contrib-python-headless"],
    "PIL": ["pillow"], "skimage": ["scikit-image"], "sklearn": ["scikit-learn"], "yaml": ["pyyaml"],
    "git": ["gitpython"], "github": ["pygithub"], "cpuinfo": ["py-cpuinfo"],
    "pynvml": ["pynvml", "nvidia-ml-py"], "dateutil": ["python-dateutil"],
    "open_clip": ["open-clip-torch"], "jtop": ["jetson-stats"], "colour": ["colour-science"],
    "google": ["protobuf"], "onnxruntime": ["onnxruntime", "onnxruntime-gpu"],
    "lark": ["lark", "lark-parser"], "pkg_resources": ["setuptools"], "clip": ["clip", "openai-clip"],
    "lightning": ["pytorch-lightning", "lightning"],
}

EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)): (.*)$", re.M)
NO_MODULE = re.compile(r"No module named '([^']+)'")
CANNOT_IMPORT = re.compile(r"cannot import name '([^']+)' from '([^']+)'")
NO_ATTR = re.compile(r"module '([^']+)' has no attribute '([^']+)'")
NO_METADATA = re.compile(r"No package metadata was found for (\S+)")
REPORT_MARK = "pack-survey-report"


# --------------------------------------------------------------------------------------------
# the child: one pack, one process


class _MissRecorder:
    """Last on ``sys.meta_path``: asked only for modules no other finder has, so it records every
    ComfyUI module a pack asked for and did not get -- also those whose ImportError it caught."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in FACADE_TOPS:
            self.names.add(fullname)
        return None


def _studio(base: Path, result: dict):
    """A Weft studio under ``base`` as server.py builds one before packs load; returns its PackHost."""
    repo = str(REPO_ROOT)
    # ``python -m`` may put "" on sys.path; make it absolute before leaving the repository.
    sys.path[:] = [repo if p in ("", ".") else p for p in sys.path]
    if repo not in sys.path:
        sys.path.insert(0, repo)
    import torch

    torch.set_num_threads(1)
    from graph.folders import FolderPaths
    from graph.registry import NodeRegistry
    from ldm.devices import detect_compute
    from ldm.engine import Engine
    from nodes import register_builtin_nodes
    from nodes.pack_host import PackHost
    from nodes.services import NodeOptions, Services

    folders = FolderPaths.under(base)
    folders.ensure()
    (base / "custom_nodes").mkdir(exist_ok=True)
    # A ComfyUI root is the working folder of a ComfyUI process; packs write relative paths there.
    os.chdir(base)
    engine = Engine(detect_compute("cpu", force_dtype=torch.float32))
    services = Services(folders=folders, options=NodeOptions(preview_method="none"), engine=engine)
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    result["builtin_nodes"] = len(registry.names())
    host = PackHost(services=services, registry=registry)
    # As server.py does before packs load: PromptServer.instance exists, with its event loop,
    # and comfy.cli_args reads the parsed flags.
    try:
        import asyncio

        import server as weft_server
        from api.compat import PromptServer
        from api.hub import Hub

        host.args = weft_server.parse_args(["--cpu", "--base-directory", str(base)])
        PromptServer.instance = PromptServer(Hub(), loop=asyncio.new_event_loop(), web_root=REPO_ROOT / "web")
        host.prompt_server = PromptServer.instance
    except Exception as exc:
        result["host_note"] = f"no PromptServer/args: {type(exc).__name__}: {exc}"
    return host


def _finish(result: dict, start: float, report_file: Path) -> None:
    result["child_seconds"] = round(time.perf_counter() - start, 3)
    report_file.write_text(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    # Threads a pack started (servers, watchers, downloads) must not keep the process alive.
    os._exit(0)


def run_child(pack_path: Path, name: str, timeout: float, report_file: Path, base: Path) -> None:
    """Import one pack into a fresh Weft studio and write its PackReport (as JSON) to report_file."""
    start = time.perf_counter()
    result: dict = {"name": name}
    try:
        import shutil

        host = _studio(base, result)
        from nodes.custom import load_custom_packs

        custom = base / "custom_nodes"
        shutil.copytree(pack_path, custom / name, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        missed = _MissRecorder()
        sys.meta_path.append(missed)
        reports = load_custom_packs([custom], host.registry, host=host, timeout=timeout, whitelist={name})
        result["facade_modules_missed"] = sorted(missed.names)
        result["absent_features"] = absent_features_referenced(custom / name)
        if not reports:
            result.update(loaded=False, error="the loader found no pack entry (no __init__.py?)")
        else:
            result.update(reports[0].as_json())
    except BaseException as exc:  # a broken Weft tree is reported, not raised
        import traceback

        result.update(loaded=False, setup_error=True,
                      error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    _finish(result, start, report_file)


def absent_features_referenced(pack_dir: Path) -> dict[str, list[str]]:
    """Features Weft lacks that the pack's modules took at import: ``{feature: [names]}`` from the
    placeholders (``facade/_weft_absent.py``) bound in their globals, or subclassed there. A pack
    that reaches a placeholder only as ``module.Name`` at run time is not seen here."""
    root = str(pack_dir.resolve())
    found: dict[str, set[str]] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        if not path or not str(Path(path).resolve()).startswith(root):
            continue
        for value in list(vars(module).values()):
            chain = value.__mro__ if isinstance(value, type) else (value,)
            for item in chain:
                feature = getattr(item, "__dict__", {}).get("__weft_absent__")
                if feature is not None:
                    found.setdefault(feature.what, set()).add(f"{item.__module__}.{item.__name__}")
    return {what: sorted(names) for what, names in sorted(found.items())}


def run_probe(pairs_file: Path, report_file: Path, base: Path) -> None:
    """Which of the (module, name) pairs in pairs_file the installed facade lacks (JSON to report_file)."""
    start = time.perf_counter()
    result: dict = {}
    try:
        import importlib

        host = _studio(base, result)
        from nodes.pack_host import install_comfy_facade

        install_comfy_facade(host)
        modules: dict[str, object] = {}
        missing: list[list] = []
        for module, name in json.loads(pairs_file.read_text()):
            if module not in modules:
                try:
                    modules[module] = importlib.import_module(module)
                except BaseException as exc:
                    modules[module] = f"{type(exc).__name__}: {exc}"
            mod = modules[module]
            if isinstance(mod, str):
                missing.append([module, name, mod])
            elif name and name != "*" and not hasattr(mod, name):
                try:
                    importlib.import_module(f"{module}.{name}")
                except BaseException:
                    missing.append([module, name, f"{module} has no {name}"])
        result["missing"] = missing
    except BaseException as exc:
        import traceback

        result.update(setup_error=True, error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    _finish(result, start, report_file)


# --------------------------------------------------------------------------------------------
# classifying a failure


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def requirement_lines(pack_dir: Path) -> list[str]:
    """The pack's requirement lines: requirements*.txt, then pyproject's [project] dependencies."""
    lines = []
    for req in sorted(pack_dir.glob("requirements*.txt")):
        for line in req.read_text(errors="replace").splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                lines.append(line)
    pyproject = pack_dir / "pyproject.toml"
    if pyproject.is_file():
        try:
            import tomllib

            deps = tomllib.loads(pyproject.read_text(errors="replace")).get("project", {}).get("dependencies", [])
            lines.extend(d for d in deps if isinstance(d, str))
        except Exception:
            pass
    return lines


def pip_line_for(module: str, pack_dir: Path) -> str | None:
    """The pack's own requirement line that provides ``module`` (top-level import name), if any."""
    top = module.split(".")[0]
    wanted = {_normal(top)} | {_normal(d) for d in IMPORT_TO_DIST.get(top, [])}
    for line in requirement_lines(pack_dir):
        match = re.match(r"\s*(?:git\+\S*/)?([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match and _normal(match.group(1).removesuffix(".git")) in wanted:
            return line
    return None


def is_pack_local(top: str, pack_dir: Path, anywhere: bool = False) -> bool:
    """Whether the pack has a module ``top`` at its root (``anywhere``: in any folder of it)."""
    if (pack_dir / f"{top}.py").is_file() or (pack_dir / top / "__init__.py").is_file():
        return True
    if anywhere:
        return any(pack_dir.rglob(f"{top}.py")) or any(pack_dir.rglob(f"{top}/__init__.py"))
    return False


def classify_text(text: str, pack_dir: Path) -> dict | None:
    """Classify one exception message; None where it says nothing about a missing module or name."""
    m = NO_MODULE.search(text)
    if m:
        module = m.group(1)
        top = module.split(".")[0]
        if top in FACADE_TOPS and not (top in AMBIGUOUS_TOPS and is_pack_local(top, pack_dir)):
            return {"kind": "facade", "module": module, "name": None, "message": text}
        if is_pack_local(top, pack_dir, anywhere=True):
            return {"kind": "other", "message": f"the pack's own module: {text}"}
        return {"kind": "third_party", "module": module, "pip": pip_line_for(module, pack_dir),
                "message": text}
    m = CANNOT_IMPORT.search(text)
    if m and "partially initialized" not in text:
        name, module = m.group(1), m.group(2)
        if module.split(".")[0] in FACADE_TOPS:
            return {"kind": "facade", "module": module, "name": name, "message": text}
        return {"kind": "third_party_name", "module": module, "name": name, "message": text}
    m = NO_METADATA.search(text)
    if m:
        return {"kind": "third_party", "module": m.group(1), "pip": pip_line_for(m.group(1), pack_dir),
                "message": text}
    m = NO_ATTR.search(text)
    if m and m.group(1).split(".")[0] in FACADE_TOPS:
        return {"kind": "facade", "module": m.group(1), "name": m.group(2), "message": text}
    return None


def classify(report: dict, pack_dir: Path) -> dict:
    """The reason a pack did not import: the raised exception, or one it was raised from."""
    error = report.get("error") or ""
    if report.get("timed_out"):
        return {"kind": "timeout", "message": error}
    if report.get("setup_error"):
        return {"kind": "weft_setup", "message": error.splitlines()[0] if error else "setup failed"}
    if error.startswith("import did not finish"):
        return {"kind": "timeout", "message": error}
    lines = [f"{m.group(1)}: {m.group(2)}" for m in EXC_LINE.finditer(error)]
    # The loader's first line is the raised exception ("ImportError: <type>: <msg>"); after it
    # comes the traceback, chained causes first and the raised one last. Try the raised one, then
    # its causes from the nearest back.
    header = error.splitlines()[0] if error else ""
    for text in [header] + lines[::-1]:
        found = classify_text(text, pack_dir)
        if found:
            return found
    return {"kind": "other", "message": (lines[-1] if lines else header) or "unknown"}


def soft_misses(output: str, pack_dir: Path) -> list[dict]:
    """Missing modules/names a pack printed about but survived (it caught the error)."""
    seen, found = set(), []
    for pattern in (NO_MODULE, CANNOT_IMPORT, NO_ATTR):
        for m in pattern.finditer(output):
            start = output.rfind("\n", 0, m.start()) + 1
            end = output.find("\n", m.end())
            line = output[start:end if end >= 0 else len(output)]
            item = classify_text(m.group(0), pack_dir)
            if item and item["kind"] != "other":
                key = (item["kind"], item.get("module"), item.get("name"))
                if key not in seen:
                    seen.add(key)
                    item["message"] = line.strip()[:300]
                    found.append(item)
    return found


def reason_text(c: dict | None, missed: list[str] | None = None) -> str:
    if not c:
        return ""
    kind = c["kind"]
    if kind == "other" and missed:
        text = c.get("message", "").replace("|", "\\|").replace("\n", " ")[:120]
        return f"other: {text} (after missing {', '.join(f'`{m}`' for m in missed)})"
    if kind == "facade":
        return f"facade: `{c['module']}`" + (f" `{c['name']}`" if c.get("name") else "")
    if kind == "third_party":
        return f"third-party: `{c['module']}`" + (f" (pip: `{c['pip']}`)" if c.get("pip") else "")
    if kind == "third_party_name":
        return f"third-party name: `{c['name']}` from `{c['module']}`"
    text = c.get("message", "").replace("|", "\\|").replace("\n", " ")
    return f"{kind}: {text[:160]}"


# --------------------------------------------------------------------------------------------
# the parent


def installed_distributions(python: str) -> list[str] | None:
    code = ("import importlib.metadata as m, json;"
            "print(json.dumps(sorted({(d.metadata['Name'] or '?') + '==' + d.version for d in m.distributions()})))")
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout)
    except Exception:
        return None


def child_env() -> dict:
    env = dict(os.environ)
    env.update({
        # A pack that pip-installs what it misses at import must not change the environment.
        "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "", "UV_OFFLINE": "1",
        # Nothing may be downloaded at import either.
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
        "YOLO_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
    })
    return env


def survey_pack(entry: dict, src: Path, python: str, timeout: float, import_timeout: float) -> dict:
    name = entry["name"]
    pack_dir = src / name
    result = {"name": name, "repo": entry.get("repo"), "commit": entry.get("commit"),
              "stars": entry.get("stars")}
    if not pack_dir.is_dir():
        result.update(present=False, loaded=False, error="not under --src",
                      failure={"kind": "absent", "message": f"{pack_dir} is missing"})
        return result
    # The child's studio (and its copy of the pack) lives in this folder, removed afterwards.
    with tempfile.TemporaryDirectory(prefix="weft-pack-survey-", ignore_cleanup_errors=True) as tmp:
        report_file = Path(tmp) / "report.json"
        cmd = [python, "-m", "bench.pack_survey", "--child", str(pack_dir), "--name", name,
               "--import-timeout", str(import_timeout), "--report-file", str(report_file),
               "--base", str(Path(tmp) / "root")]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True,
                                  errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
            output, rc, timed_out = proc.stdout + proc.stderr, proc.returncode, False
        except subprocess.TimeoutExpired as exc:
            def text(b):
                return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
            output, rc, timed_out = text(exc.stdout) + text(exc.stderr), None, True
        wall = time.perf_counter() - start
        report = json.loads(report_file.read_text()) if report_file.is_file() else None
    if report is None:
        report = {"loaded": False, "timed_out": timed_out,
                  "error": (f"process ran past {timeout:g} s" if timed_out
                            else f"the process exited with {rc} before reporting")}
        if not timed_out:
            tail = [l for l in output.splitlines() if l.strip()][-3:]
            report["error"] += (": " + " | ".join(tail)) if tail else ""
    result.update(present=True, loaded=bool(report.get("loaded")), nodes=len(report.get("nodes") or []),
                  rejected=report.get("rejected") or {}, seconds=report.get("seconds"),
                  wall_seconds=round(wall, 2), error=report.get("error"),
                  web_directory=report.get("web_directory"), node_names=report.get("nodes") or [],
                  facade_modules_missed=report.get("facade_modules_missed") or [],
                  absent_features=report.get("absent_features") or {})
    if report.get("host_note"):
        result["host_note"] = report["host_note"]
    result["failure"] = None if result["loaded"] else classify(report, pack_dir)
    result["soft_misses"] = soft_misses(output, pack_dir)
    # What the pack printed, for a failure only (the table's reason comes from the report).
    result["output_tail"] = None if result["loaded"] else output[-2000:]
    return result


def blockers(results: list[dict]) -> list[tuple[str, set, list]]:
    """Facade modules that stop packs: (module, names, packs), most packs first."""
    table: dict[str, tuple[set, list]] = {}
    for r in results:
        f = r.get("failure") or {}
        if f.get("kind") == "facade":
            names, packs = table.setdefault(f["module"], (set(), []))
            if f.get("name"):
                names.add(f["name"])
            packs.append(r["name"])
    return sorted(((m, n, p) for m, (n, p) in table.items()), key=lambda t: (-len(t[2]), t[0]))


def missed_modules(results: list[dict]) -> list[tuple[str, list]]:
    """Every ComfyUI module a pack asked for and did not get while importing (caught or not)."""
    table: dict[str, list] = {}
    for r in results:
        for module in r.get("facade_modules_missed") or []:
            table.setdefault(module, []).append(r["name"])
    return sorted(table.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def markdown(results: list[dict]) -> str:
    rows = ["| pack | stars | imported? | nodes | failure reason |", "|---|---:|:---:|---:|---|"]
    for r in results:
        stars = f"~{r['stars']}" if r.get("stars") else ""
        ok = "yes" if r["loaded"] else ("absent" if not r.get("present") else "no")
        nodes = str(r.get("nodes", "")) + (f" ({len(r['rejected'])} rejected)" if r.get("rejected") else "")
        reason = reason_text(r.get("failure"), r.get("facade_modules_missed"))
        rows.append(f"| {r['name']} | {stars} | {ok} | {nodes} | {reason} |")
    return "\n".join(rows)


# --------------------------------------------------------------------------------------------
# static usage scan


def comfyui_modules(git_dir: str | None) -> set[str] | None:
    """Dotted module names of a ComfyUI checkout (a bare git dir), to split ``a.b.c`` correctly."""
    if not git_dir:
        return None
    out = subprocess.run(["git", "--git-dir", git_dir, "ls-tree", "-r", "--name-only", "HEAD"],
                         capture_output=True, text=True, check=True).stdout
    modules = set()
    for path in out.splitlines():
        if path.endswith(".py"):
            parts = path[:-3].split("/")
            if parts[-1] == "__init__":
                parts = parts[:-1]
            for i in range(1, len(parts) + 1):
                modules.add(".".join(parts[:i]))
    return modules


class _UsageVisitor(ast.NodeVisitor):
    def __init__(self, aliases: dict[str, str], modules: set[str] | None, record):
        self.aliases, self.modules, self.record = aliases, modules, record

    def split(self, dotted: str) -> tuple[str, str | None]:
        parts = dotted.split(".")
        if self.modules is not None:
            for i in range(len(parts), 0, -1):
                if ".".join(parts[:i]) in self.modules:
                    return ".".join(parts[:i]), (parts[i] if i < len(parts) else None)
            return parts[0], (parts[1] if len(parts) > 1 else None)
        # No module list: the segments before the first capitalised one, or all but the last.
        for i, p in enumerate(parts[1:], 1):
            if p[:1].isupper():
                return ".".join(parts[:i]), p
        return (".".join(parts[:-1]), parts[-1]) if len(parts) > 1 else (dotted, None)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain, cur = [], node
        while isinstance(cur, ast.Attribute):
            chain.append(cur.attr)
            cur = cur.value
        if isinstance(cur, ast.Name) and cur.id in self.aliases:
            dotted = ".".join([self.aliases[cur.id]] + chain[::-1])
            self.record(*self.split(dotted))
        else:
            self.generic_visit(node)


def scan_pack_usage(pack_dir: Path, modules: set[str] | None) -> tuple[set[tuple[str, str | None]], bool]:
    """(module, name) pairs of ComfyUI's surface that a pack's source uses; and whether it uses torchvision."""
    used: set[tuple[str, str | None]] = set()
    torchvision = False
    init = pack_dir / "__init__.py"
    init_text = init.read_text(errors="replace") if init.is_file() else ""
    for path in sorted(pack_dir.rglob("*.py")):
        if any(part.startswith(".") for part in path.relative_to(pack_dir).parts):
            continue
        try:
            tree = ast.parse(path.read_text(errors="replace"), filename=str(path))
        except (SyntaxError, ValueError):
            continue
        aliases: dict[str, str] = {}
        # An absolute ``import utils`` means ComfyUI's module unless the pack put its own folder
        # on sys.path and has a module of that name there.
        alters_path = "sys.path" in init_text or "sys.path" in path.read_text(errors="replace")

        def local(top: str) -> bool:
            if top not in AMBIGUOUS_TOPS or not alters_path:
                return False
            here = path.parent
            return ((here / f"{top}.py").is_file() or (here / top / "__init__.py").is_file()
                    or is_pack_local(top, pack_dir))

        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    top = a.name.split(".")[0]
                    if top == "torchvision":
                        torchvision = True
                    if top in FACADE_TOPS and not local(top):
                        used.add((a.name, None))
                        aliases[a.asname or top] = a.name if a.asname else top
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top = node.module.split(".")[0]
                if top == "torchvision":
                    torchvision = True
                if top in FACADE_TOPS and not local(top):
                    used.add((node.module, None))
                    for a in node.names:
                        full = f"{node.module}.{a.name}"
                        if (full in modules if modules is not None
                                else node.module in PACKAGES and a.name[:1].islower()):
                            used.add((full, None))
                            aliases[a.asname or a.name] = full
                        else:
                            used.add((node.module, a.name))
        if aliases:
            _UsageVisitor(aliases, modules, lambda m, n: used.add((m, n))).visit(tree)
    return used, torchvision


def probe_facade(pairs: list[tuple[str, str | None]], python: str, timeout: float) -> dict | None:
    """Ask a child with the facade installed which pairs it lacks: {(module, name): why}."""
    with tempfile.TemporaryDirectory(prefix="weft-facade-probe-", ignore_cleanup_errors=True) as tmp:
        pairs_file, report_file = Path(tmp) / "pairs.json", Path(tmp) / "report.json"
        pairs_file.write_text(json.dumps(sorted(pairs, key=lambda p: (p[0], p[1] or ""))))
        cmd = [python, "-m", "bench.pack_survey", "--probe-facade", str(pairs_file),
               "--report-file", str(report_file), "--base", str(Path(tmp) / "root")]
        try:
            subprocess.run(cmd, cwd=REPO_ROOT, env=child_env(), capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return None
        report = json.loads(report_file.read_text()) if report_file.is_file() else {}
    if "missing" not in report:
        print(f"[survey] facade probe failed: {report.get('error', 'no report')[:500]}", file=sys.stderr)
        return None
    return {(m, n): why for m, n, why in report["missing"]}


def _ranked(table: dict[str, set]) -> list[str]:
    return [f"{len(packs):3d}  {key}    [{', '.join(sorted(packs))}]"
            for key, packs in sorted(table.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


def write_usage(results_by_name: dict, src: Path, names: list[str], modules: set[str] | None,
                out: Path, python: str, timeout: float) -> dict:
    """Scan every pack's source, ask the current facade what it lacks, write ``out``; returns the gaps."""
    used_by: dict[str, set] = {}
    module_packs: dict[str, set] = {}
    name_packs: dict[str, set] = {}
    torchvision_packs = []
    for name in names:
        pack_dir = src / name
        if not pack_dir.is_dir():
            continue
        used, tv = scan_pack_usage(pack_dir, modules)
        if tv:
            torchvision_packs.append(name)
        used_by[name] = used
        for m, n in used:
            module_packs.setdefault(m, set()).add(name)
            if n:
                name_packs.setdefault(f"{m}.{n}", set()).add(name)
    pairs = set().union(*used_by.values()) if used_by else set()
    missing = probe_facade(list(pairs), python, timeout)
    gap_packs: dict[str, set] = {}
    if missing is not None:
        for name, used in used_by.items():
            for m, n in used:
                if (m, n) in missing:
                    gap_packs.setdefault(f"{m}.{n}" if n else f"{m} (module)", set()).add(name)
    lines = [f"# ComfyUI surface used by {len(used_by)} node packs (static scan of every .py file with "
             f"Python's ast: imports, from-imports and attribute chains through aliases).",
             "# Regenerate: python -m bench.pack_survey --src DIR --python PY --usage THIS_FILE "
             "[--comfyui-git BARE_GIT_DIR]",
             f"# packs that import torchvision somewhere ({len(torchvision_packs)}): {', '.join(torchvision_packs)}",
             "", f"## modules ({len(module_packs)}): packs that import or reference them", ""]
    lines += _ranked(module_packs)
    lines += ["", f"## names ({len(name_packs)}): module.name -> packs that use it", ""]
    lines += _ranked(name_packs)
    lines += ["", "## missing from the facade as it stood at this run: module (module) or module.name -> packs", ""]
    lines += _ranked(gap_packs) if missing is not None else ["(the facade probe failed; see the survey's log)"]
    out.write_text("\n".join(lines) + "\n")
    for name, used in used_by.items():
        if name in results_by_name:
            r = results_by_name[name]
            r["facade_uses"] = len(used)
            r["uses_torchvision"] = name in torchvision_packs
            if missing is not None:
                r["facade_gaps"] = sorted(f"{m}.{n}" if n else f"{m} (module)" for m, n in used if (m, n) in missing)
    return {k: sorted(v) for k, v in gap_packs.items()} if missing is not None else {}


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, default=Path("/work/packs/src"),
                        help="folder holding one folder per pack, named as in the list")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter of the environment with the packs' requirements")
    parser.add_argument("--packs", type=Path, default=PACK_LIST, help="the pack list (JSON)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="machine-readable results")
    parser.add_argument("--only", nargs="*", help="survey only these packs")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per pack process")
    parser.add_argument("--import-timeout", type=float, default=120.0,
                        help="seconds the loader gives the pack's import")
    parser.add_argument("--jobs", type=int, default=1, help="pack processes at once")
    parser.add_argument("--usage", type=Path, help="also write the static facade-usage list here")
    parser.add_argument("--comfyui-git", help="a ComfyUI bare git dir, to split module.name exactly")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--probe-facade", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--report-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--base", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        run_child(args.child, args.name, args.import_timeout, args.report_file, args.base)
        return 0
    if args.probe_facade:
        run_probe(args.probe_facade, args.report_file, args.base)
        return 0

    entries = json.loads(args.packs.read_text())["packs"]
    if args.only:
        entries = [e for e in entries if e["name"] in set(args.only)]
    before = installed_distributions(args.python)
    started = time.time()

    def one(entry):
        r = survey_pack(entry, args.src, args.python, args.timeout, args.import_timeout)
        status = "ok" if r["loaded"] else reason_text(r.get("failure"), r.get("facade_modules_missed"))
        print(f"[survey] {r['name']}: {status} ({r.get('wall_seconds', 0)} s)", file=sys.stderr, flush=True)
        return r

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(one, entries))
    after = installed_distributions(args.python)

    by_name = {r["name"]: r for r in results}
    gaps = {}
    if args.usage:
        gaps = write_usage(by_name, args.src, [e["name"] for e in entries], comfyui_modules(args.comfyui_git),
                           args.usage, args.python, args.timeout)

    present = [r for r in results if r.get("present")]
    loaded = [r for r in present if r["loaded"]]
    third_party: dict[str, dict] = {}
    for r in results:
        f = r.get("failure") or {}
        if f.get("kind") == "third_party":
            item = third_party.setdefault(f["module"].split(".")[0], {"pip": set(), "packs": []})
            item["packs"].append(r["name"])
            if f.get("pip"):
                item["pip"].add(f["pip"])
    summary = {
        "packs_listed": len(entries), "packs_present": len(present), "imported": len(loaded),
        "nodes_registered": sum(r.get("nodes", 0) for r in loaded),
        "facade_blockers": [{"module": m, "names": sorted(n), "packs": p} for m, n, p in blockers(results)],
        "facade_gaps_static": [{"use": k, "packs": v} for k, v in
                               sorted(gaps.items(), key=lambda kv: (-len(kv[1]), kv[0]))],
        "facade_modules_missed": [{"module": m, "packs": p} for m, p in missed_modules(results)],
        "third_party_blockers": {k: {"pip": sorted(v["pip"]), "packs": v["packs"]}
                                 for k, v in sorted(third_party.items(), key=lambda kv: -len(kv[1]["packs"]))},
        "environment_changed": None if before is None or after is None else {
            "added": sorted(set(after) - set(before)), "removed": sorted(set(before) - set(after))},
    }
    doc = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
           "python": args.python, "src": str(args.src), "timeout_s": args.timeout,
           "import_timeout_s": args.import_timeout, "summary": summary, "packs": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, default=sorted) + "\n")

    print(markdown(results))
    print(f"\nImported {len(loaded)} of {len(present)} packs present ({len(entries)} listed); "
          f"{summary['nodes_registered']} nodes registered.")
    if summary["facade_blockers"]:
        print("\nFacade modules/names that stop packs (most packs first):")
        for b in summary["facade_blockers"]:
            names = f" names: {', '.join(b['names'])}" if b["names"] else ""
            print(f"  {len(b['packs']):2d}  {b['module']}{names}  <- {', '.join(b['packs'])}")
    if summary["facade_modules_missed"]:
        print("\nComfyUI modules asked for and absent during import, caught or not (most packs first):")
        for b in summary["facade_modules_missed"]:
            print(f"  {len(b['packs']):2d}  {b['module']}  <- {', '.join(b['packs'])}")
    if gaps:
        print(f"\nFacade gaps from the static scan ({len(gaps)} uses the facade lacks; "
              f"top 40, full list in {args.usage}):")
        for item in summary["facade_gaps_static"][:40]:
            print(f"  {len(item['packs']):2d}  {item['use']}")
    if third_party:
        print("\nThird-party modules missing:")
        for k, v in summary["third_party_blockers"].items():
            pip = f" (pip: {'; '.join(v['pip'])})" if v["pip"] else ""
            print(f"  {len(v['packs']):2d}  {k}{pip}  <- {', '.join(v['packs'])}")
    changed = summary["environment_changed"]
    if changed and (changed["added"] or changed["removed"]):
        print(f"\nWARNING: the environment changed during the survey: {changed}")
    print(f"\nResults: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
