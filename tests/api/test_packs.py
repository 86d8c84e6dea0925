"""Third-party node packs cannot take the server down or replace what is core."""

import pytest

from .conftest import ServerProcess, preview_prompt

PACKS = {
    "raises.py": "raise RuntimeError('this pack is broken on purpose')\n",
    "exits.py": "import sys\nsys.exit(3)\n",
    "hangs.py": "import time\ntime.sleep(3600)\nNODE_CLASS_MAPPINGS = {}\n",
    "no_mappings.py": "X = 1\n",
    "impostor.py": """
class FakeSampler:
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "run"
    CATEGORY = "evil"
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}
    def run(self):
        raise RuntimeError("impostor ran")

class Honest:
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    CATEGORY = "fine"
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {})}}
    def run(self, text):
        return (text.upper(),)

NODE_CLASS_MAPPINGS = {"CLIPTextEncode": FakeSampler, "KSampler": FakeSampler, "HonestNode": Honest}
""",
    "route_thief.py": """
from server import PromptServer
from aiohttp import web

@PromptServer.instance.routes.get("/queue")
async def steal(request):
    return web.json_response({"stolen": True})

@PromptServer.instance.routes.get("/thief/ok")
async def ok(request):
    return web.json_response({"ok": True})

NODE_CLASS_MAPPINGS = {}
""",
    "disabled_pack.py.disabled": "raise SystemExit('never imported')\n",
}


@pytest.fixture(scope="module")
def pack_server(base_dir):
    for name, source in PACKS.items():
        (base_dir / "custom_nodes" / name).write_text(source)
    folder = base_dir / "custom_nodes" / "folder_pack"
    (folder / "js").mkdir(parents=True)
    (folder / "__init__.py").write_text("from .impl import NODE_CLASS_MAPPINGS\nWEB_DIRECTORY = './js'\n")
    (folder / "impl.py").write_text(
        "class Twice:\n    RETURN_TYPES = ('STRING',)\n    FUNCTION = 'run'\n"
        "    @classmethod\n    def INPUT_TYPES(cls):\n        return {'required': {'text': ('STRING', {})}}\n"
        "    def run(self, text):\n        return (text * 2,)\n"
        "NODE_CLASS_MAPPINGS = {'Twice': Twice}\n")
    (folder / "js" / "ext.js").write_text("export const hello = 1;\n")
    proc = ServerProcess(base_dir, ["--custom-node-import-timeout", "2"]).start()
    yield proc
    proc.stop()


def report_of(server, name):
    return next(p for p in server.get("/node_packs")[1] if p["name"] == name)


def test_failing_packs_are_reported_and_server_serves(pack_server):
    raises = report_of(pack_server, "raises")
    assert not raises["loaded"] and "broken on purpose" in raises["error"]
    exits = report_of(pack_server, "exits")
    assert not exits["loaded"] and "SystemExit" in exits["error"]
    hangs = report_of(pack_server, "hangs")
    assert not hangs["loaded"] and "did not finish" in hangs["error"]
    assert "NODE_CLASS_MAPPINGS" in report_of(pack_server, "no_mappings")["error"]
    names = [p["name"] for p in pack_server.get("/node_packs")[1]]
    assert "disabled_pack" not in names and "disabled_pack.py" not in names
    status, body = pack_server.post("/prompt", {"prompt": preview_prompt("alive")})
    assert status == 200 and pack_server.wait_for_history(body["prompt_id"])["outputs"]["2"] == {"text": ["alive"]}


def test_pack_cannot_replace_core_nodes(pack_server):
    impostor = report_of(pack_server, "impostor")
    assert impostor["loaded"] and impostor["nodes"] == ["HonestNode"]
    assert "core node" in impostor["rejected"]["CLIPTextEncode"]
    assert "core node" in impostor["rejected"]["KSampler"]
    info = pack_server.get("/object_info")[1]
    for core in ("CLIPTextEncode", "KSampler"):
        assert info[core]["python_module"] == "nodes" and info[core]["category"] != "evil"
    assert "LATENT" == info["KSampler"]["output"][0] and "seed" in info["KSampler"]["input"]["required"]
    assert info["HonestNode"]["python_module"] == "custom_nodes.impostor"
    _, body = pack_server.post("/prompt", {"prompt": preview_prompt("", {"class_type": "HonestNode",
                                                                          "inputs": {"text": "ok"}})})
    assert pack_server.wait_for_history(body["prompt_id"])["outputs"]["2"] == {"text": ["OK"]}


def test_pack_cannot_replace_core_routes(pack_server):
    status, body = pack_server.get("/queue")
    assert status == 200 and "stolen" not in body
    assert pack_server.get("/thief/ok") == (200, {"ok": True})
    assert any("/queue" in reason for reason in report_of(pack_server, "route_thief")["rejected"])


def test_folder_pack_and_its_web_directory(pack_server):
    assert report_of(pack_server, "folder_pack")["loaded"]
    assert "/extensions/folder_pack/ext.js" in pack_server.get("/extensions")[1]
    status, body = pack_server.get("/extensions/folder_pack/ext.js")
    assert status == 200 and b"hello" in body
    assert pack_server.get("/extensions/folder_pack/../impl.py")[0] in (403, 404)


def test_disable_all_with_whitelist(fresh_base_dir):
    base_dir = fresh_base_dir
    for name, source in PACKS.items():
        (base_dir / "custom_nodes" / name).write_text(source)
    proc = ServerProcess(base_dir, ["--disable-all-custom-nodes", "--whitelist-custom-nodes", "impostor"]).start()
    try:
        assert [p["name"] for p in proc.get("/node_packs")[1]] == ["impostor"]
        assert "Gate" not in proc.get("/object_info")[1]
    finally:
        proc.stop()
