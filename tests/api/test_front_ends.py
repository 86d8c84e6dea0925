"""The front end at / (--front-end, --front-end-root), Weft's editor at /weft/, and the routes
ComfyUI's frontend reads besides the core API: /jobs, /i18n, /global_subgraphs, the model library,
/internal/*, node docs, and a user folder that answers what a front end reads on load."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from api.frontends import FrontEndError, resolve_front_end

from .conftest import REPO, ServerProcess, preview_prompt


def test_resolving_front_ends(tmp_path):
    weft = resolve_front_end("weft", None, REPO / "web")
    assert weft.is_weft and weft.root == REPO / "web"
    comfyui = resolve_front_end("comfyui", None, REPO / "web")
    assert comfyui.kind == "comfyui" and (comfyui.root / "index.html").is_file() and comfyui.version
    with pytest.raises(FrontEndError, match="no index.html"):
        resolve_front_end("weft", str(tmp_path), REPO / "web")
    (tmp_path / "index.html").write_text("<p>mine</p>")
    assert resolve_front_end("comfyui", str(tmp_path), REPO / "web").kind == "custom"


def test_an_unusable_front_end_root_stops_the_server_with_a_clear_message(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "server.py"), "--base-directory", str(tmp_path),
                             "--front-end-root", str(tmp_path / "nowhere"), "--port", "1"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "--front-end-root" in result.stderr and "index.html" in result.stderr


@pytest.fixture(scope="module")
def custom_front_end(tmp_path_factory):
    folder = tmp_path_factory.mktemp("front")
    (folder / "index.html").write_text("<!doctype html><title>custom</title>")
    (folder / "extensions" / "core").mkdir(parents=True)
    (folder / "extensions" / "core" / "own.js").write_text("export {};")
    return folder


@pytest.fixture(scope="module")
def other_front_server(tmp_path_factory, custom_front_end):
    base = tmp_path_factory.mktemp("weft-front")
    pack = base / "custom_nodes" / "lingo"
    (pack / "locales" / "fr").mkdir(parents=True)
    (pack / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    (pack / "locales" / "fr" / "main.json").write_text(json.dumps({"hello": "bonjour"}))
    (pack / "locales" / "fr" / "nodeDefs.json").write_text(json.dumps({"Lingo": {"display_name": "Lingua"}}))
    (pack / "locales" / "fr" / "settings.json").write_text("{broken")
    (pack / "subgraphs").mkdir()
    (pack / "subgraphs" / "upscale twice.json").write_text(json.dumps({"nodes": [], "links": []}))
    (base / "models" / "loras").mkdir(parents=True)
    (base / "models" / "loras" / "style.safetensors").write_bytes(b"x")
    (base / "models" / "loras" / "style.webp").write_bytes(b"RIFF0000WEBP")
    proc = ServerProcess(base, ["--front-end-root", str(custom_front_end)]).start()
    yield proc
    proc.stop()


def test_another_front_end_at_root_and_weft_editor_at_weft(other_front_server):
    assert b"custom" in other_front_server.get("/")[1]
    status, page = other_front_server.get("/weft/")
    assert status == 200 and b"js/main.js" in page
    assert other_front_server.get("/weft/js/main.js")[0] == 200
    extensions = other_front_server.get("/api/extensions")[1]
    assert "/extensions/core/own.js" in extensions and "/extensions/weft/weft-bridge.js" in extensions
    assert b"Weft.Bridge" in other_front_server.get("/extensions/weft/weft-bridge.js")[1]


def test_weft_editor_is_the_default_and_lists_no_bridge(server):
    assert b"js/main.js" in server.get("/")[1]
    assert server.get("/weft/")[0] == 200
    assert not any("/extensions/weft/" in url for url in server.get("/extensions")[1])


def test_packs_translations_and_blueprints(other_front_server):
    french = other_front_server.get("/api/i18n")[1]["fr"]
    assert french["hello"] == "bonjour" and french["nodeDefs"]["Lingo"]["display_name"] == "Lingua"
    assert "settings" not in french  # the broken file is left out, the rest still served
    blueprints = other_front_server.get("/api/global_subgraphs")[1]
    assert blueprints == {"lingo/upscale twice": {"source": "custom_node", "name": "upscale twice",
                                                  "info": {"node_pack": "lingo"}}}
    one = other_front_server.get("/api/global_subgraphs/lingo%2Fupscale%20twice")[1]
    assert json.loads(one["data"]) == {"nodes": [], "links": []}
    assert other_front_server.get("/api/global_subgraphs/lingo%2F..%2F..%2Fsecret")[0] == 404


def test_model_library(other_front_server):
    kinds = other_front_server.get("/api/experiment/models")[1]
    assert {"name": "loras", "folders": [str((other_front_server.base / "models" / "loras").resolve())]} in kinds
    files = other_front_server.get("/api/experiment/models/loras")[1]
    assert [(f["name"], f["pathIndex"]) for f in files] == [("style.safetensors", 0)]
    assert other_front_server.get("/api/experiment/models/nope")[0] == 404
    assert other_front_server.get("/api/experiment/models/preview/loras/0/style.safetensors") == (200, b"RIFF0000WEBP")
    assert other_front_server.get("/api/experiment/models/preview/loras/0/..%2F..%2Fx.safetensors")[0] == 404
    assert other_front_server.get("/api/experiment/models/preview/loras/5/style.safetensors")[0] == 404


def test_internal_folders_and_files(server, base_dir):
    paths = server.get("/internal/folder_paths")[1]
    assert paths["output"] == [str((base_dir / "output").resolve())] and "checkpoints" in paths
    (base_dir / "output" / "old.png").write_bytes(b"1")
    time.sleep(0.05)
    (base_dir / "output" / "new.png").write_bytes(b"2")
    names = server.get("/internal/files/output")[1]
    assert names.index("new.png") < names.index("old.png")
    assert server.get("/internal/files/models")[0] == 400


def test_node_docs_of_the_embedded_docs_package(server):
    status, text = server.get("/docs/KSampler/en.md")
    assert status == 200 and b"KSampler" in text


def test_a_user_folder_answers_what_front_ends_read(server, base_dir):
    assert server.get("/api/userdata/comfy.templates.json") == (200, [])
    assert server.get("/api/userdata/workflows%2F.index.json") == (200, {"favorites": []})
    status, css = server.get("/api/userdata/user.css")
    assert status == 200 and css.startswith(b"/*")
    assert server.get("/api/userdata?dir=subgraphs") == (200, [])
    assert server.request("POST", "/userdata/user.css", b"body { color: red }")[0] == 200
    assert server.get("/user.css") == (200, b"body { color: red }")
    # never overwritten once there
    assert server.get("/api/userdata/user.css") == (200, b"body { color: red }")


def test_jobs_list_and_detail(server):
    server.post("/prompt", {"prompt": preview_prompt("fine")})
    pending_id = str(uuid.uuid4())
    failing = preview_prompt("", {"class_type": "Boom", "inputs": {"text": "x"}})
    status, answer = server.post("/prompt", {"prompt": failing, "client_id": "jobs-test", "prompt_id": pending_id})
    assert status == 200
    server.wait_for_history(pending_id)
    done = server.get("/api/jobs?status=failed")[1]
    (job,) = [j for j in done["jobs"] if j["id"] == pending_id]
    assert job["status"] == "failed" and job["execution_error"]["exception_message"].startswith("boom")
    assert job["create_time"] > 1_700_000_000_000 and done["pagination"]["total"] >= 1
    assert not any(j["id"] == pending_id for j in server.get("/api/jobs?status=completed")[1]["jobs"])
    detail = server.get(f"/api/jobs/{pending_id}")[1]
    assert "Boom" in {n["class_type"] for n in detail["workflow"]["prompt"].values()}
    assert "execution_status" in detail
    assert server.get("/api/jobs/nope")[0] == 404
    assert server.get("/api/jobs?status=sleeping")[0] == 400
    page = server.get("/api/jobs?limit=1&offset=0")[1]
    assert len(page["jobs"]) == 1 and page["pagination"]["limit"] == 1


def test_live_log_entries_to_subscribed_clients(server):
    import asyncio

    import aiohttp

    async def run():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{server.url.replace('http', 'ws')}/ws?clientId=log-reader") as ws:
                await ws.receive()  # status
                async with session.patch(server.url + "/internal/logs/subscribe",
                                         json={"clientId": "log-reader", "enabled": True}) as response:
                    assert response.status == 200
                async with session.post(server.url + "/prompt", json={"prompt": preview_prompt("logged")}):
                    pass  # every job ends with a line in the log
                while True:
                    message = await asyncio.wait_for(ws.receive(), 20)
                    event = json.loads(message.data)
                    if event["type"] == "logs":
                        return event["data"]

    data = asyncio.run(run())
    assert data["size"] == {"cols": 120, "rows": 40} and data["entries"][0]["m"]
    assert server.request("PATCH", "/internal/logs/subscribe", {"enabled": True})[0] == 400
