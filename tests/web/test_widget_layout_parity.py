"""The editor writes `widgets_values` in the slot layout the server's UI->API converter reads
(graph/workflow/widgets.py): checked for every built-in node and every node of the fixture schema."""

import json
import shutil
import subprocess
from pathlib import Path

from graph.registry import NodeRegistry
from graph.workflow.widgets import CONTROL, FILTER, UPLOAD, VALUE, widget_layout
from nodes import register_builtin_nodes

HERE = Path(__file__).parent
SLOT_NAMES = {CONTROL: "control_after_generate", FILTER: "control_filter_list", UPLOAD: "upload"}


def _editor_layouts(object_info: dict) -> dict:
    node = shutil.which("node")
    assert node, "node (>= 18) is needed to run the editor's model code"
    result = subprocess.run([node, str(HERE / "js" / "dump-widget-layout.mjs")], input=json.dumps(object_info),
                            capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def _server_layout(schema: dict) -> list[str]:
    return [slot.input_name if slot.kind == VALUE else SLOT_NAMES[slot.kind] for slot in widget_layout(schema)]


def test_editor_and_converter_agree_on_every_widget_slot():
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    object_info = json.loads(json.dumps(registry.object_info()))
    object_info.update(json.loads((HERE / "fixtures" / "object_info.json").read_text()))
    editor = _editor_layouts(object_info)
    mismatches = {name: (editor[name], _server_layout(schema)) for name, schema in object_info.items()
                  if editor[name] != _server_layout(schema)}
    assert not mismatches
    assert editor["KSampler"][:2] == ["seed", "control_after_generate"]
