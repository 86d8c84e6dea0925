"""Websocket delivery: slow readers are dropped, sockets share a client id, results outlive sockets."""

import asyncio
import json
import time

import aiohttp

from .conftest import gate_files, gate_prompt, preview_prompt


async def _submit(session, url, prompt, client_id):
    async with session.post(f"{url}/prompt", json={"prompt": prompt, "client_id": client_id}) as response:
        return (await response.json())["prompt_id"]


async def _until(ws, predicate, timeout=60):
    async def loop():
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(message.data)
                if predicate(data):
                    return data
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return None
    return await asyncio.wait_for(loop(), timeout)


def test_slow_reader_is_dropped_and_others_are_served(server):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            slow = await session.ws_connect(f"{server.url}/ws?clientId=slow", max_msg_size=0, autoclose=False)
            fast = await session.ws_connect(f"{server.url}/ws?clientId=fast")
            chatty = preview_prompt("", {"class_type": "Chatty", "inputs": {"count": 600}})
            slow_id = await _submit(session, server.url, chatty, "slow")  # floods the slow client with previews
            fast_id = await _submit(session, server.url, preview_prompt("after"), "fast")
            done = await _until(fast, lambda d: d["type"] == "execution_success" and d["data"]["prompt_id"] == fast_id)
            assert done is not None
            await asyncio.sleep(0.5)
            # the slow client was cut off: reading now ends in a close, long before 600 previews
            received, closed = 0, False
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                message = await slow.receive(timeout=30)
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    closed = True
                    break
                received += 1
            await fast.close()
            return slow_id, received, closed

    slow_id, received, closed = asyncio.run(scenario())
    assert closed and received < 600
    assert server.wait_for_history(slow_id)["status"]["status_str"] == "success"  # execution never waited
    assert server.get("/queue")[0] == 200


def test_two_sockets_with_one_client_id_both_hear(server):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            a = await session.ws_connect(f"{server.url}/ws?clientId=twin")
            b = await session.ws_connect(f"{server.url}/ws?clientId=twin")
            prompt_id = await _submit(session, server.url, preview_prompt("twins"), "twin")
            wanted = lambda d: d["type"] == "executed" and d["data"]["prompt_id"] == prompt_id
            got = await asyncio.gather(_until(a, wanted), _until(b, wanted))
            return got

    first, second = asyncio.run(scenario())
    assert first["data"]["output"] == second["data"]["output"] == {"text": ["twins"]}


def test_client_disconnects_mid_run_and_fetches_result(server, base_dir):
    gate, marker = gate_files(base_dir)

    async def scenario():
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"{server.url}/ws?clientId=leaver")
            prompt_id = await _submit(session, server.url, gate_prompt(gate, marker, token=7), "leaver")
            await _until(ws, lambda d: d["type"] == "executing" and d["data"].get("node") == "1")
            await ws.close()
            return prompt_id

    prompt_id = asyncio.run(scenario())
    gate.touch()
    assert server.wait_for_history(prompt_id)["outputs"]["2"] == {"text": ["passed 7"]}


def test_reconnecting_client_is_told_what_runs(server, base_dir):
    gate, marker = gate_files(base_dir)

    async def scenario():
        async with aiohttp.ClientSession() as session:
            prompt_id = await _submit(session, server.url, gate_prompt(gate, marker), "back")
            deadline = time.monotonic() + 30
            while not marker.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            ws = await session.ws_connect(f"{server.url}/ws?clientId=back")
            executing = await _until(ws, lambda d: d["type"] == "executing")
            gate.touch()
            await ws.close()
            return prompt_id, executing

    prompt_id, executing = asyncio.run(scenario())
    assert executing["data"] == {"node": "1", "display_node": "1", "prompt_id": prompt_id}
