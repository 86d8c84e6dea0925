"""Which websocket clients get binary preview frames (api.previews): the client that queued the
job, when it asked for them by its feature flags, by the job's extra_data.preview_method, or by
the server's --preview-method; never a client that said nothing, never another client."""

from __future__ import annotations

import asyncio
import json
import struct
import uuid

import aiohttp
import pytest

from tests.api.conftest import ServerProcess
from tests.clients.conftest import starter_base, starter_prompt

HELLO = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}


async def _watch(url: str, sid: str, hello: bool, until_prompt: asyncio.Future, frames: list, types: list):
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{url.replace('http', 'ws')}/ws?clientId={sid}") as ws:
            if hello:
                await ws.send_str(json.dumps(HELLO))
            until_prompt.set_result(True) if not until_prompt.done() else None
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    frames.append(message.data)
                    continue
                event = json.loads(message.data)
                types.append(event["type"])
                data = event.get("data") or {}
                if event["type"] == "executing" and data.get("node") is None and data.get("prompt_id"):
                    return


async def _run(url: str, *, hello: bool, extra_data: dict | None = None, bystander_hello: bool = False,
               seed: int = 1):
    """Queue the starter workflow as one client; return (its frames, its events, a bystander's frames)."""
    sid, other = uuid.uuid4().hex, uuid.uuid4().hex
    frames, types, other_frames = [], [], []
    ready, other_ready = asyncio.get_running_loop().create_future(), asyncio.get_running_loop().create_future()
    watcher = asyncio.create_task(_watch(url, sid, hello, ready, frames, types))
    bystander = asyncio.create_task(_watch(url, other, bystander_hello, other_ready, other_frames, []))
    await asyncio.gather(ready, other_ready)
    await asyncio.sleep(0.3)  # the hello is read before the prompt arrives
    body = {"prompt": starter_prompt(seed=seed, steps=3), "client_id": sid}
    if extra_data is not None:
        body["extra_data"] = extra_data
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/prompt", json=body) as response:
            assert response.status == 200, await response.text()
    await asyncio.wait_for(watcher, 60)
    await asyncio.sleep(0.2)
    bystander.cancel()
    return frames, types, other_frames


def _frame_types(frames: list[bytes]) -> set[int]:
    return {struct.unpack(">I", frame[:4])[0] for frame in frames}


def test_a_client_that_declares_preview_support_gets_previews_with_metadata(starter_server):
    frames, types, other = asyncio.run(_run(starter_server.url, hello=True, bystander_hello=True))
    assert "executed" in types
    assert frames and _frame_types(frames) == {4}
    meta_length = struct.unpack(">I", frames[0][4:8])[0]
    meta = json.loads(frames[0][8:8 + meta_length])
    assert meta["image_type"] == "image/jpeg" and meta["node_id"] == "3"
    assert other == [], "another client, even one that reads previews, gets none of this job's"


def test_a_client_that_says_nothing_gets_no_binary_frames(starter_server):
    frames, types, _ = asyncio.run(_run(starter_server.url, hello=False, seed=2))
    assert "progress" in types and "executed" in types
    assert frames == []


def test_the_jobs_preview_method_decides(starter_server):
    frames, _, _ = asyncio.run(_run(starter_server.url, hello=False, extra_data={"preview_method": "latent2rgb"},
                                    seed=3))
    assert frames and _frame_types(frames) == {1}  # no metadata: the client did not say it reads it
    frames, _, _ = asyncio.run(_run(starter_server.url, hello=True, extra_data={"preview_method": "none"}, seed=4))
    assert frames == []
    frames, _, _ = asyncio.run(_run(starter_server.url, hello=True, extra_data={"preview_method": "default"},
                                    seed=5))
    assert frames and _frame_types(frames) == {4}


@pytest.fixture
def flagged_server(tmp_path):
    proc = ServerProcess(starter_base(tmp_path), ["--preview-method", "latent2rgb"]).start()
    yield proc
    proc.stop()


def test_the_server_flag_is_the_default_for_clients_that_say_nothing(flagged_server):
    frames, _, _ = asyncio.run(_run(flagged_server.url, hello=False))
    assert frames and _frame_types(frames) == {1}
    frames, _, _ = asyncio.run(_run(flagged_server.url, hello=False, extra_data={"preview_method": "none"}, seed=2))
    assert frames == []
