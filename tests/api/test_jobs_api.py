"""The first-cut job API against a real server process: submit, validate, history, queue,
interrupt, failures, and the websocket's execution messages."""

import asyncio
import json
import time

import aiohttp

from .conftest import gate_files, gate_prompt, preview_prompt


def test_submit_runs_and_history_records_outputs(server):
    status, body = server.post("/prompt", {"prompt": preview_prompt("hello"), "client_id": "c1"})
    assert status == 200 and body["node_errors"] == {} and isinstance(body["number"], int)
    entry = server.wait_for_history(body["prompt_id"])
    assert entry["outputs"] == {"2": {"text": ["hello"]}}
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    number, prompt_id, prompt, extra, outputs = entry["prompt"]
    assert prompt_id == body["prompt_id"] and outputs == ["2"] and extra["client_id"] == "c1"
    status, via_api = server.get("/api/history")
    assert status == 200 and body["prompt_id"] in via_api


def test_invalid_prompt_is_refused_with_node_errors_and_nothing_queued(server):
    bad = {"1": {"class_type": "PreviewAny", "inputs": {}}}
    status, body = server.post("/prompt", {"prompt": bad})
    assert status == 400
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"]["1"]["errors"][0]["type"] == "required_input_missing"
    assert server.get("/queue")[1] == {"queue_running": [], "queue_pending": []}


def test_no_prompt_and_malformed_bodies(server):
    assert server.post("/prompt", {})[1]["error"]["type"] == "no_prompt"
    status, body = server.request("POST", "/prompt", b"{not json")
    assert status == 400 and body["error"]["type"] == "invalid_json"
    status, body = server.post("/prompt", {"prompt": preview_prompt("x"), "number": "NaN"})
    assert status == 400
    assert server.get("/prompt")[1] == {"exec_info": {"queue_remaining": 0}}


def test_duplicate_prompt_id_conflicts(server):
    status, _ = server.post("/prompt", {"prompt": preview_prompt("a"), "prompt_id": "same-id"})
    assert status == 200
    server.wait_for_history("same-id")
    status, body = server.post("/prompt", {"prompt": preview_prompt("b"), "prompt_id": "same-id"})
    assert status == 409


def test_queue_pending_delete_and_interrupt(server, base_dir):
    gate, marker = gate_files(base_dir)
    _, running = server.post("/prompt", {"prompt": gate_prompt(gate, marker)})
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    _, pending_a = server.post("/prompt", {"prompt": preview_prompt("a")})
    _, pending_b = server.post("/prompt", {"prompt": preview_prompt("b")})
    queue = server.get("/api/queue")[1]
    assert [item[1] for item in queue["queue_running"]] == [running["prompt_id"]]
    assert [item[1] for item in queue["queue_pending"]] == [pending_a["prompt_id"], pending_b["prompt_id"]]
    server.post("/queue", {"delete": [pending_a["prompt_id"]]})
    assert [i[1] for i in server.get("/queue")[1]["queue_pending"]] == [pending_b["prompt_id"]]

    server.post("/interrupt", {"prompt_id": "not-the-running-one"})
    time.sleep(0.3)
    assert server.get("/queue")[1]["queue_running"]  # untouched
    server.post("/interrupt", {"prompt_id": running["prompt_id"]})
    entry = server.wait_for_history(running["prompt_id"])
    assert entry["status"]["status_str"] == "error"
    assert any(m[0] == "execution_interrupted" for m in entry["status"]["messages"])
    assert server.wait_for_history(pending_b["prompt_id"])["status"]["status_str"] == "success"
    assert server.get(f"/history/{pending_a['prompt_id']}")[1] == {}


def test_failing_node_fails_only_its_job(server):
    _, bad = server.post("/prompt", {"prompt": preview_prompt("", {"class_type": "Boom", "inputs": {"text": "x"}})})
    _, good = server.post("/prompt", {"prompt": preview_prompt("fine")})
    entry = server.wait_for_history(bad["prompt_id"])
    [error] = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert error["node_type"] == "Boom" and "boom: x" in error["exception_message"]
    assert server.wait_for_history(good["prompt_id"])["outputs"]["2"] == {"text": ["fine"]}


def test_history_clear_and_delete(server):
    ids = [server.post("/prompt", {"prompt": preview_prompt(t)})[1]["prompt_id"] for t in "abc"]
    for pid in ids:
        server.wait_for_history(pid)
    assert list(server.get("/history?max_items=2")[1]) == ids[1:]
    server.post("/history", {"delete": [ids[0]]})
    assert ids[0] not in server.get("/history")[1]
    server.post("/history", {"clear": True})
    assert server.get("/history")[1] == {}


def test_object_info_routes(server):
    status, info = server.get("/object_info")
    assert status == 200 and "PreviewAny" in info and "Gate" in info
    assert info["Gate"]["python_module"] == "custom_nodes.weft_test_pack"
    assert list(server.get("/api/object_info/StringLength")[1]) == ["StringLength"]


async def _collect_ws(server, client_id: str, prompt: dict, until: str) -> list:
    messages = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{server.url}/ws?clientId={client_id}") as ws:
            await ws.send_str(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
            async with session.post(f"{server.url}/prompt", json={"prompt": prompt, "client_id": client_id}) as r:
                prompt_id = (await r.json())["prompt_id"]
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    messages.append(json.loads(message.data))
                    last = messages[-1]
                    if last["type"] == until and last["data"].get("prompt_id") == prompt_id:
                        break
    return messages


def test_websocket_execution_messages(server):
    messages = asyncio.run(asyncio.wait_for(_collect_ws(server, "client-a", preview_prompt("ws"), "execution_success"), 30))
    types = [m["type"] for m in messages]
    assert types[0] == "status" and messages[0]["data"]["sid"] == "client-a"
    assert "feature_flags" in types
    assert messages[types.index("feature_flags")]["data"]["supports_preview_metadata"] is True
    for expected in ("execution_start", "execution_cached", "executing", "executed"):
        assert expected in types
    executed = next(m for m in messages if m["type"] == "executed")["data"]
    assert executed["node"] == "2" and executed["output"] == {"text": ["ws"]}
    assert types.index("execution_start") < types.index("executed") < types.index("execution_success")
