"""The pack loader imports packs as ComfyUI does and reports what went wrong in actionable words."""

from __future__ import annotations

import sys
from pathlib import Path

from graph.registry import NodeRegistry
from nodes.custom import load_custom_packs, module_name_for

NODE = '''
class Echo:
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    CATEGORY = "test"
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {})}}
    def run(self, text):
        return (text,)
'''


def load(folder: Path, *names: str):
    registry = NodeRegistry()
    reports = load_custom_packs([folder], registry, whitelist=set(names) or None, timeout=20)
    return registry, {r.name: r for r in reports}


def test_folder_pack_is_imported_under_its_path_and_relative_imports_work(tmp_path):
    pack = tmp_path / "my.pack"
    pack.mkdir()
    (pack / "impl.py").write_text(NODE)
    (pack / "__init__.py").write_text("from .impl import Echo\nNODE_CLASS_MAPPINGS = {'EchoDotted': Echo}\n")
    registry, reports = load(tmp_path)
    assert reports["my.pack"].loaded and reports["my.pack"].protocol == "v1"
    name = module_name_for(pack)
    assert name == str(pack).replace(".", "_x_") and sys.modules[name].__file__ == str(pack / "__init__.py")
    assert registry.node_info("EchoDotted")["python_module"] == "custom_nodes.my.pack"


def test_install_attempts_at_import_are_blocked_and_reported(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "installs_quietly.py").write_text(f'''
import subprocess, sys, os
try:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "definitely-not-installed"])
except Exception:
    pass
try:
    os.system("pip install something && touch {marker}")
except PermissionError:
    pass
{NODE}
NODE_CLASS_MAPPINGS = {{"EchoQuiet": Echo}}
''')
    (tmp_path / "installs_loudly.py").write_text(
        "import subprocess, sys\nsubprocess.run(['pip3', 'install', '-r', 'requirements.txt'], check=True)\n"
        "NODE_CLASS_MAPPINGS = {}\n")
    (tmp_path / "imports_pip.py").write_text(
        f"try:\n    import pip\nexcept ImportError:\n    pip = None\nassert pip is None\n{NODE}\n"
        "NODE_CLASS_MAPPINGS = {'EchoPip': Echo}\n")
    (tmp_path / "runs_other_commands.py").write_text(
        f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'pass'], check=True)\n{NODE}\n"
        "NODE_CLASS_MAPPINGS = {'EchoOther': Echo}\n")
    _, reports = load(tmp_path)
    quiet, loud, other = reports["installs_quietly"], reports["installs_loudly"], reports["runs_other_commands"]
    assert quiet.loaded and len(quiet.blocked_installs) == 2 and "pip install" in quiet.blocked_installs[0]
    assert not marker.exists()
    assert not loud.loaded and "does not let node packs install" in loud.error
    assert loud.blocked_installs == ["pip3 install -r requirements.txt"]
    assert other.loaded and other.blocked_installs == []
    assert reports["imports_pip"].loaded and reports["imports_pip"].blocked_installs == ["import pip"]
    # Outside a pack's import, nothing is blocked.
    import subprocess
    assert subprocess.run([sys.executable, "-c", "import sys; print(sys.argv)", "pip", "install"],
                          capture_output=True).returncode == 0


def test_missing_dependency_names_the_pip_line_from_requirements(tmp_path):
    pack = tmp_path / "needs_things"
    pack.mkdir()
    (pack / "requirements.txt").write_text("# what we need\nopencv-python>=4.8\nweft-no-such-dist==1.0\n")
    (pack / "__init__.py").write_text("import cv2_is_not_here_either\n")
    other = tmp_path / "needs_cv2"
    other.mkdir()
    (other / "requirements.txt").write_text("numpy\nopencv-python-headless\n")
    (other / "__init__.py").write_text("import weft_no_such_dist\n")
    internal = tmp_path / "needs_comfy_internals.py"
    internal.write_text("import comfy.controlnet_weft_lacks\n")
    _, reports = load(tmp_path)
    report = reports["needs_things"]
    assert report.failure == "missing_dependency" and report.missing_module == "cv2_is_not_here_either"
    assert report.pip_install == f"pip install -r {pack / 'requirements.txt'}"
    assert reports["needs_cv2"].pip_install == "pip install -r " + str(other / "requirements.txt")
    assert reports["needs_comfy_internals"].failure == "comfyui_internal"
    assert reports["needs_comfy_internals"].pip_install is None


def test_pip_line_picks_the_requirement_that_provides_the_module(tmp_path):
    from nodes.pack_errors import describe_failure

    (tmp_path / "requirements.txt").write_text("numpy\nopencv-python-headless>=4\nscikit-image\n")
    facts = describe_failure(ModuleNotFoundError("No module named 'skimage'", name="skimage"), tmp_path)
    assert facts == {"kind": "missing_dependency", "module": "skimage", "pip": "pip install scikit-image"}
    facts = describe_failure(ModuleNotFoundError("x", name="cv2"), None)
    assert facts["pip"] == "pip install opencv-python"


def test_v3_pack_registers_through_its_entrypoint(tmp_path):
    (tmp_path / "entry_only.py").write_text('''
class Node:
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}
    @classmethod
    def define_schema(cls):
        class Schema:
            node_id = "EntryNode"
            display_name = "Entry node"
        return Schema
    def run(self):
        return ("x",)

class Extension:
    loaded = False
    async def on_load(self):
        Extension.loaded = True
    async def get_node_list(self):
        return [Node]

async def comfy_entrypoint():
    return Extension()
''')
    registry, reports = load(tmp_path)
    report = reports["entry_only"]
    assert report.loaded and report.protocol == "v3" and report.nodes == ["EntryNode"]
    assert registry.get("EntryNode").display_name == "Entry node"


def test_a_node_whose_inputs_need_a_later_pack_is_registered_after_all_packs_load(tmp_path):
    """Packs load in name order; a node reading another pack's state in INPUT_TYPES gets a second
    try once every pack is in, as ComfyUI first calls INPUT_TYPES after loading all packs."""
    (tmp_path / "a_reader.py").write_text(f'''
import sys
{NODE}
class Reader(Echo):
    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{"text": (sys.modules["weft_test_b_writer_state"].CHOICES,)}}}}
NODE_CLASS_MAPPINGS = {{"Reader": Reader}}
''')
    (tmp_path / "b_writer.py").write_text(
        "import sys, types\nstate = types.ModuleType('weft_test_b_writer_state')\nstate.CHOICES = ['x', 'y']\n"
        "sys.modules[state.__name__] = state\nNODE_CLASS_MAPPINGS = {}\n")
    registry, reports = load(tmp_path)
    assert reports["a_reader"].nodes == ["Reader"] and reports["a_reader"].rejected == {}
    assert registry.get("Reader").inputs()["text"].type == ["x", "y"]
