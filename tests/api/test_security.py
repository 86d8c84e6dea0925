"""Safe by default, against a real server: cross-site requests, DNS rebinding, the access token."""

import asyncio

import aiohttp
import pytest

from .conftest import ServerProcess, preview_prompt

JOB = {"prompt": preview_prompt("x")}


def queued(server) -> int:
    body = server.get("/queue")[1]
    return len(body["queue_pending"]) + len(body["queue_running"]) + len(server.get("/history")[1])


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1:1"},  # same host, another port: another origin
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://evil.example", "Sec-Fetch-Site": "same-origin"},
])
def test_cross_site_post_refused_and_nothing_queued(server, headers):
    before = queued(server)
    status, body = server.request("POST", "/prompt", JOB, headers=headers)
    assert status == 403 and body["error"]["type"] == "cross_site_request"
    assert queued(server) == before
    assert server.get("/prompt")[0] == 200  # still answering


def test_same_origin_and_script_posts_allowed(server):
    status, _ = server.request("POST", "/prompt", JOB, headers={"Origin": server.url})
    assert status == 200
    status, _ = server.request("POST", "/prompt", JOB)  # no Origin: a script, not a browser page
    assert status == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8188", "192.168.1.10:8188", "localhost.evil.example"])
def test_dns_rebinding_host_refused_even_for_reads(server, host):
    status, body = server.request("GET", "/history", headers={"Host": host})
    assert status == 403 and body["error"]["type"] == "forbidden_host"


def test_loopback_host_names_accepted(server):
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", f"[::1]:{server.port}"):
        assert server.request("GET", "/prompt", headers={"Host": host})[0] == 200


async def _ws_status(url: str, headers: dict) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, headers=headers) as ws:
                await ws.close()
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def test_websocket_from_foreign_origin_refused(server):
    url = f"{server.url}/ws?clientId=x"
    assert asyncio.run(_ws_status(url, {"Origin": "http://evil.example"})) == 403
    assert asyncio.run(_ws_status(url, {"Origin": server.url})) == 101


def test_cors_allows_exactly_one_origin(fresh_base_dir):
    base_dir = fresh_base_dir
    proc = ServerProcess(base_dir, ["--enable-cors-header", "http://tools.example"]).start()
    try:
        status, _ = proc.request("POST", "/prompt", JOB, headers={"Origin": "http://tools.example"})
        assert status == 200
        status, _ = proc.request("POST", "/prompt", JOB, headers={"Origin": "http://other.example"})
        assert status == 403
        req_status, _ = proc.request("OPTIONS", "/prompt", headers={"Origin": "http://tools.example",
                                                                     "Access-Control-Request-Method": "POST"})
        assert req_status == 204
    finally:
        proc.stop()


ROUTES = ["/", "/prompt", "/queue", "/history", "/object_info", "/view?filename=a.png", "/system_stats",
          "/api/queue", "/userdata?dir=workflows", "/extensions", "/weft_test/hello"]


@pytest.fixture
def public_server(fresh_base_dir):
    base_dir = fresh_base_dir
    (base_dir / "custom_nodes" / "route_pack.py").write_text(
        "from server import PromptServer\nfrom aiohttp import web\n"
        "@PromptServer.instance.routes.get('/weft_test/hello')\n"
        "async def hello(request):\n    return web.json_response({'hello': True})\n"
        "NODE_CLASS_MAPPINGS = {}\n")
    proc = ServerProcess(base_dir, ["--listen", "0.0.0.0", "--access-token", "s3cret-token"]).start_with_token()
    yield proc
    proc.stop()


def test_non_loopback_requires_token_on_every_route(public_server):
    for path in ROUTES:
        assert public_server.request("GET", path)[0] == 401, path
        assert public_server.request("GET", path, headers={"Authorization": "Bearer wrong"})[0] == 401, path
        assert public_server.request("GET", path + ("&" if "?" in path else "?") + "token=wrong")[0] == 401, path
    assert public_server.request("POST", "/prompt", JOB)[0] == 401
    assert queued_with_token(public_server) == 0
    assert asyncio.run(_ws_status(f"{public_server.url}/ws", {})) == 401
    good = {"Authorization": "Bearer s3cret-token"}
    assert public_server.request("GET", "/weft_test/hello", headers=good) == (200, {"hello": True})
    assert public_server.request("GET", "/queue", headers=good)[0] == 200
    assert asyncio.run(_ws_status(f"{public_server.url}/ws?token=s3cret-token", {})) == 101


def queued_with_token(server) -> int:
    body = server.request("GET", "/queue", headers={"Authorization": "Bearer s3cret-token"})[1]
    return len(body["queue_pending"]) + len(body["queue_running"])


def test_generated_token_is_printed(fresh_base_dir):
    base_dir = fresh_base_dir
    proc = ServerProcess(base_dir, ["--listen", "0.0.0.0"]).start_with_token()
    try:
        assert "access token" in proc.log()
        assert proc.request("GET", "/queue")[0] == 401
    finally:
        proc.stop()
