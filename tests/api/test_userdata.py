"""Per-user data: settings, workflow files through /userdata, and no way out of user/<user>/."""

import os

import pytest

from .conftest import ServerProcess


def test_settings_roundtrip(server):
    assert server.get("/settings") == (200, {})
    assert server.post("/settings", {"Comfy.Theme": "dark", "a": 1})[0] == 200
    assert server.post("/settings/a", 2)[0] == 200
    assert server.get("/settings")[1] == {"Comfy.Theme": "dark", "a": 2}
    assert server.get("/api/settings/Comfy.Theme") == (200, "dark")
    assert server.get("/users")[1] == {"storage": "server", "migrated": True}


def test_userdata_files(server, base_dir):
    assert server.request("POST", "/userdata/workflows%2Fa.json", b'{"x": 1}')[1] == "workflows/a.json"
    assert (base_dir / "user" / "default" / "workflows" / "a.json").read_bytes() == b'{"x": 1}'
    assert server.request("POST", "/userdata/workflows%2Fa.json?overwrite=false", b"{}")[0] == 409
    assert server.get("/userdata/workflows%2Fa.json") == (200, {"x": 1})
    # hidden files (the bookmarks file a user folder starts with, temporary files) are not listed
    assert server.get("/userdata?dir=workflows") == (200, ["a.json"])
    status, info = server.get("/userdata?dir=workflows&full_info=true")
    assert info[0]["path"] == "a.json" and info[0]["size"] == 8
    listing = server.get("/v2/userdata?path=workflows")[1]
    assert listing[0]["name"] == "a.json" and listing[0]["type"] == "file"
    assert server.request("POST", "/userdata/workflows%2Fa.json/move/workflows%2Fb.json", b"")[1] == "workflows/b.json"
    assert server.request("DELETE", "/userdata/workflows%2Fb.json")[0] == 204
    assert server.get("/userdata/workflows%2Fb.json")[0] == 404


@pytest.mark.parametrize("path", ["..%2F..%2Fescape.json", "%2E%2E%2Fescape.json", "%2Ftmp%2Fescape.json",
                                  "workflows%2F..%2F..%2Fescape.json", "a%5C..%5C..%5Cescape.json",
                                  "x%00.json"])
def test_userdata_cannot_leave_the_user_folder(server, base_dir, path):
    before = sorted(os.listdir(base_dir.parent))
    status, _ = server.request("POST", f"/userdata/{path}", b"{}")
    assert status in (400, 403, 404)
    assert sorted(os.listdir(base_dir.parent)) == before
    assert not (base_dir / "user" / "escape.json").exists()
    assert server.get(f"/userdata/{path}")[0] in (400, 403, 404)
    assert server.request("POST", f"/userdata/workflows%2Fok.json/move/{path}", b"")[0] in (400, 403, 404)


def test_multi_user(fresh_base_dir):
    base_dir = fresh_base_dir
    proc = ServerProcess(base_dir, ["--multi-user"]).start()
    try:
        _, user_id = proc.post("/users", {"username": "ana"})
        assert proc.get("/users")[1]["users"] == {user_id: "ana"}
        assert proc.request("POST", "/settings", {"x": 1}, headers={"Comfy-User": user_id})[0] == 200
        assert (base_dir / "user" / user_id / "comfy.settings.json").is_file()
        assert proc.request("GET", "/settings", headers={"Comfy-User": "nobody"})[0] == 403
        assert proc.request("GET", "/settings", headers={"Comfy-User": "../default"})[0] == 403
    finally:
        proc.stop()


def test_system_routes(server):
    stats = server.get("/system_stats")[1]
    assert {"os", "ram_total", "ram_free", "python_version", "pytorch_version"} <= set(stats["system"])
    assert stats["devices"][0]["type"] in ("cpu", "cuda")
    assert server.get("/features")[1]["supports_preview_metadata"] is True
    assert "checkpoints" in server.get("/models")[1]
    assert server.get("/models/nope")[0] == 404
    assert server.get("/embeddings") == (200, [])
    assert isinstance(server.get("/internal/logs")[1], str)
    assert "entries" in server.get("/internal/logs/raw")[1]
