"""The node reference (``docs/nodes.md``), generated from the registry of built-in nodes.

    .venv/bin/python -m nodes.docs > docs/nodes.md

Every built-in node under its category: display name, class name, description, inputs (type,
default, range or choices, tooltip), outputs. Written from ``/object_info`` as served outside a
running prompt, so lists of model and input files are empty and the text does not depend on
what is installed. A test checks that the committed file equals this output.
"""

from __future__ import annotations

import sys
from typing import Any

from graph.registry import NodeRegistry
from nodes import register_builtin_nodes
from nodes.coverage import DOCUMENTATION_ONLY, FRONTEND_ONLY, comfyui_core_node_names, other_family

REGENERATE = ".venv/bin/python -m nodes.docs > docs/nodes.md"
#: Widget options shown in the "range" column, in this order.
RANGE_OPTIONS = ("min", "max", "step", "round")
#: Combos longer than this are shown with their first entries and a count.
MAX_CHOICES = 30


def _cell(text: Any) -> str:
    """Table-cell text: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(value: Any) -> str:
    return f"`{value}`" if value != "" else "`\"\"`"


def _describe_input(name: str, spec: Any, category: str) -> list[str]:
    kind, options = (spec[0], spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}) \
        if isinstance(spec, (list, tuple)) else (spec, {})
    if isinstance(kind, list):
        type_text = "combo"
        if not kind:
            values = "(files found at run time)"
        elif len(kind) > MAX_CHOICES:
            values = ", ".join(_code(v) for v in kind[:MAX_CHOICES]) + f", … ({len(kind)} in all)"
        else:
            values = ", ".join(_code(v) for v in kind)
        default = options.get("default", kind[0] if kind else "")
    else:
        type_text = f"`{kind}`"
        values = ", ".join(f"{key} {options[key]}" for key in RANGE_OPTIONS if key in options)
        default = options.get("default", "")
    name_text = f"`{name}`" + (" (optional)" if category == "optional" else "")
    default_text = _code(default) if default != "" or "default" in options else ""
    return [name_text, type_text, default_text, values, options.get("tooltip", "")]


def render_node(info: dict) -> str:
    lines = [f"### {info['display_name']} (`{info['name']}`)", ""]
    if info.get("deprecated"):
        lines += ["*Deprecated.*", ""]
    if info.get("experimental"):
        lines += ["*Experimental.*", ""]
    if info.get("description"):
        lines += [_cell(info["description"]), ""]
    rows = []
    for category in ("required", "optional"):
        for name in info["input_order"].get(category, []):
            rows.append(_describe_input(name, info["input"][category][name], category))
    if rows:
        lines += ["| input | type | default | range / choices | tooltip |", "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
        lines.append("")
    hidden = info["input"].get("hidden", {})
    if hidden:
        lines += ["Hidden inputs: " + ", ".join(f"`{name}` ({kind})" for name, kind in hidden.items()), ""]
    outputs = [f"`{kind}`" + (f" {name}" if name != kind else "") + (" (list)" if is_list else "")
               for kind, name, is_list in zip(info["output"], info["output_name"], info["output_is_list"])]
    tooltips = info.get("output_tooltips") or []
    if outputs:
        described = [out + (f" — {_cell(tooltips[i])}" if i < len(tooltips) and tooltips[i] else "")
                     for i, out in enumerate(outputs)]
        lines += ["Outputs: " + "; ".join(described), ""]
    else:
        lines += ["Outputs: none", ""]
    if info.get("output_node"):
        lines += ["Output node: runs whenever a prompt contains it.", ""]
    return "\n".join(lines)


def render(registry: NodeRegistry) -> str:
    infos = registry.object_info()
    by_category: dict[str, list[dict]] = {}
    for info in infos.values():
        by_category.setdefault(info["category"] or "(none)", []).append(info)
    lines = ["# Node reference", "",
             "Every built-in node: its display name and class name (the `class_type` of an API prompt), "
             "inputs and outputs, as served by `/object_info`. Generated from the node registry by "
             f"`nodes/docs.py`; do not edit by hand — regenerate with `{REGENERATE}`.", "",
             f"{len(infos)} nodes in {len(by_category)} categories.", ""]
    for category in sorted(by_category):
        lines += [f"- [{category}](#{_anchor(category)})"]
    lines.append("")
    for category in sorted(by_category):
        lines += [f"## {category}", ""]
        for info in sorted(by_category[category], key=lambda i: i["name"].lower()):
            lines.append(render_node(info))
    return "\n".join(lines).rstrip("\n") + "\n"


def _anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, spaces to hyphens, punctuation other than - and _ dropped."""
    return "".join(c for c in heading.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def render_coverage(registry: NodeRegistry, core_names: list[str]) -> str:
    """The table of ComfyUI's core nodes: in Weft, another model family's, or frontend-only."""
    rows = []
    counts = {"in Weft": 0, "other family": 0, "frontend-only": 0, "documentation only": 0, "missing": 0}
    for name in core_names:
        family = other_family(name)
        if name in registry:
            status, counts["in Weft"] = "in Weft", counts["in Weft"] + 1
        elif family is not None:
            status, counts["other family"] = f"other family: {family}", counts["other family"] + 1
        elif name in DOCUMENTATION_ONLY:
            status = f"documentation only (the page of `{DOCUMENTATION_ONLY[name]}`)"
            counts["documentation only"] += 1
        elif name in FRONTEND_ONLY:
            status, counts["frontend-only"] = "frontend-only (resolved by the workflow converter)", \
                counts["frontend-only"] + 1
        else:
            status, counts["missing"] = "**missing**", counts["missing"] + 1
        rows.append(f"| `{name}` | {status} |")
    summary = ", ".join(f"{count} {label}" for label, count in counts.items() if count)
    return "\n".join([
        "# Coverage of ComfyUI's core nodes", "",
        "Every node of ComfyUI's current core set (the node folders of the `comfyui-embedded-docs` "
        "package that requirements-dev.txt pins) and whether Weft has it under the same name. Nodes of "
        "Stable Diffusion–family models and model-agnostic nodes are all in Weft; the others serve other "
        "model families (classified in `nodes/coverage.py`). "
        f"{len(core_names)} nodes: {summary}.", "",
        "| node | status |", "|---|---|", *rows, ""])


def builtin_reference() -> str:
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    return render(registry) + "\n" + render_coverage(registry, comfyui_core_node_names())


def main() -> int:
    sys.stdout.write(builtin_reference())
    return 0


if __name__ == "__main__":
    sys.exit(main())
