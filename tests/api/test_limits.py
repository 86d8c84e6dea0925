"""Hostile or oversized requests are refused quickly and change nothing."""

import asyncio
import json
import time

import aiohttp
import pytest

from .conftest import ServerProcess, gate_prompt, preview_prompt


def snapshot(server):
    """What is queued or done; a refused request must leave it as it was."""
    queue = server.get("/queue")[1]
    return ([i[1] for i in queue["queue_running"]], [i[1] for i in queue["queue_pending"]],
            sorted(server.get("/history")[1]))


@pytest.mark.parametrize("body", [
    b"{not json", b"[1, 2, 3]", json.dumps({"prompt": [1, 2]}).encode(), json.dumps({"prompt": "text"}).encode(),
    json.dumps({"prompt": preview_prompt("x"), "number": "NaN"}).encode(),
    json.dumps({"prompt": preview_prompt("x"), "number": "inf"}).encode(),
    json.dumps({"prompt": preview_prompt("x"), "extra_data": [1]}).encode(),
    json.dumps({"prompt": preview_prompt("x"), "client_id": {"a": 1}}).encode(),
    b"\xff\xfe\x00garbage",
])
def test_malformed_bodies(server, body):
    before = snapshot(server)
    status, response = server.request("POST", "/prompt", body)
    assert status == 400 and "error" in response
    assert snapshot(server) == before


def test_hundred_thousand_node_prompt_refused(server):
    prompt = {str(i): {"class_type": "PrimitiveInt", "inputs": {"value": i}} for i in range(100_000)}
    before = snapshot(server)
    start = time.monotonic()
    status, body = server.post("/prompt", {"prompt": prompt})
    elapsed = time.monotonic() - start
    assert status == 413 and body["error"]["type"] == "prompt_too_large"
    assert elapsed < 30, elapsed  # refused before validating 100k nodes, not after
    assert snapshot(server) == before


def test_deep_json_refused(server):
    before = snapshot(server)
    deep = b'{"prompt": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    status, body = server.request("POST", "/prompt", deep)
    assert status == 400 and body["error"]["type"] == "invalid_json"
    moderately_deep = {"prompt": {"1": {"class_type": "PrimitiveString", "inputs": {"value": {"__value__": "x"}}},
                                  "x": {"nest": json.loads("[" * 200 + "]" * 200)}}}
    status, body = server.post("/prompt", moderately_deep)
    assert status == 400 and "deeper" in body["error"]["message"]
    assert snapshot(server) == before
    assert server.get("/prompt")[0] == 200


async def _flood(url: str, count: int, prompt: dict):
    statuses, retry_after = [], set()
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def post(i):
            async with session.post(f"{url}/prompt", json={"prompt": prompt}) as response:
                statuses.append(response.status)
                if response.status == 429:
                    retry_after.add(response.headers.get("Retry-After"))

        async def probe():
            timings = []
            for _ in range(10):
                start = time.monotonic()
                async with session.get(f"{url}/queue") as response:
                    await response.read()
                    timings.append(time.monotonic() - start)
                await asyncio.sleep(0.1)
            return timings

        probe_task = asyncio.create_task(probe())
        await asyncio.gather(*(post(i) for i in range(count)))
        timings = await probe_task
    return statuses, retry_after, timings


def test_flood_past_queue_limit_gets_429_and_queue_stays_responsive(fresh_base_dir):
    base_dir = fresh_base_dir
    server = ServerProcess(base_dir, ["--max-queue-size", "50"]).start()
    try:
        gate, marker = base_dir / "gate", base_dir / "marker"
        server.post("/prompt", {"prompt": gate_prompt(gate, marker)})  # holds the worker
        statuses, retry_after, timings = asyncio.run(_flood(server.url, 2000, preview_prompt("flood")))
        assert statuses.count(200) == 50
        assert statuses.count(429) == 1950 and retry_after == {"5"}
        assert max(timings) < 5.0, timings  # /queue was never starved by the flood
        assert len(server.get("/queue")[1]["queue_pending"]) == 50
        gate.touch()
    finally:
        server.stop()
