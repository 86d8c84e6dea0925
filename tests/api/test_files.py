"""Files over HTTP: /view and uploads refuse every path escape, check image content, never
overwrite silently, and write nothing on a refused request."""

import io
import os
import urllib.parse
import uuid

import pytest
from PIL import Image

SECRET = "top-secret-content-" + uuid.uuid4().hex


def png_bytes(size=(8, 8), color=(255, 0, 0, 255), text=None) -> bytes:
    from PIL import PngImagePlugin
    info = None
    if text:
        info = PngImagePlugin.PngInfo()
        for k, v in text.items():
            info.add_text(k, v)
    buffer = io.BytesIO()
    Image.new("RGBA", size, color).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def multipart(fields: dict, file_field="image", filename="a.png", data=b"", content_type="image/png"):
    boundary = "weftboundary" + uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def upload(server, data, filename="a.png", **fields):
    body, headers = multipart(fields, filename=filename, data=data)
    return server.request("POST", "/upload/image", body, headers=headers)


def all_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
                  if not f.startswith("server-") and not f.startswith("weft-jobs"))


@pytest.fixture(scope="module")
def secret(base_dir):
    outside = base_dir.parent / f"secret-{uuid.uuid4().hex}.png"
    outside.write_text(SECRET)
    (base_dir / "output").mkdir(exist_ok=True)
    (base_dir / "output" / "inside.png").write_bytes(png_bytes())
    (base_dir / "output" / "link.png").symlink_to(outside)
    (base_dir / "output" / "linkdir").symlink_to(base_dir.parent)
    yield outside
    outside.unlink()


@pytest.mark.parametrize("query", [
    "filename=../{secret}", "filename=..%2F{secret}", "filename=%2E%2E%2F{secret}", "filename=/etc/passwd",
    "filename={abs}", "filename=..\\{secret}", "filename=x%00.png", "filename=link.png",
    "filename={secret}&subfolder=..", "filename={secret}&subfolder=linkdir", "filename={secret}&subfolder=%2E%2E",
    "filename={secret}&subfolder=/", "filename={secret}&type=../..", "filename={secret}&subfolder=a/../..",
    "filename={secret}%20[../..]",
])
def test_view_traversal_refused(server, secret, query):
    query = query.format(secret=urllib.parse.quote(secret.name), abs=urllib.parse.quote(str(secret)))
    status, body = server.get("/view?" + query)
    assert status in (400, 403, 404), (query, status)
    assert SECRET.encode() not in (body if isinstance(body, bytes) else str(body).encode())
    assert server.get("/prompt")[0] == 200


def test_view_serves_inside_and_converts(server, secret):
    status, body = server.get("/view?filename=inside.png")
    assert status == 200 and body.startswith(b"\x89PNG")
    status, body = server.get("/view?filename=inside.png&preview=webp;80")
    assert status == 200 and body[8:12] == b"WEBP"
    status, body = server.get("/view?filename=inside.png&channel=a")
    assert status == 200 and Image.open(io.BytesIO(body)).getchannel("A").getextrema() == (255, 255)
    status, body = server.get("/view?filename=inside.png%20[output]&type=input")
    assert status == 200


def test_view_active_content_is_an_attachment(server, base_dir):
    (base_dir / "output" ).mkdir(exist_ok=True)
    (base_dir / "output" / "page.html").write_text("<script>alert(1)</script>")
    import urllib.request
    with urllib.request.urlopen(server.url + "/view?filename=page.html") as response:
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers.get_content_type() == "application/octet-stream"


@pytest.mark.parametrize("filename, fields", [
    ("../../evil.png", {}), ("..\\..\\evil.png", {}), ("/tmp/evil.png", {}),
    ("evil.png", {"subfolder": "../.."}), ("evil.png", {"subfolder": "/tmp"}), ("evil.png", {"type": "../.."}),
    ("evil.png", {"subfolder": "%2E%2E"}),
])
def test_upload_traversal_writes_nothing_outside(server, base_dir, filename, fields):
    before_outside = all_files(base_dir.parent)
    status, body = upload(server, png_bytes(), filename=filename, **fields)
    after_outside = all_files(base_dir.parent)
    new = set(after_outside) - set(before_outside)
    inside = [n for n in new if n.startswith(base_dir.name + os.sep + "input" + os.sep)]
    assert new == set(inside), (filename, fields, new)  # only ever lands inside input/
    if status == 200:
        assert "/" not in body["name"] and "\\" not in body["name"] and body["name"] not in ("..", ".")
        assert (base_dir / "input" / body.get("subfolder", "") / body["name"]).is_file()


def test_upload_checks_content_and_never_overwrites_silently(server, base_dir):
    status, body = upload(server, b"not an image at all", filename="fake.png")
    assert status == 400 and not (base_dir / "input" / "fake.png").exists()
    first = png_bytes(color=(1, 2, 3, 255))
    assert upload(server, first, filename="pic.png")[1]["name"] == "pic.png"
    assert upload(server, first, filename="pic.png")[1]["name"] == "pic.png"  # same bytes: reused
    second = png_bytes(color=(9, 9, 9, 255))
    assert upload(server, second, filename="pic.png")[1]["name"] == "pic (1).png"
    assert (base_dir / "input" / "pic.png").read_bytes() == first
    assert upload(server, second, filename="pic.png", overwrite="true")[1]["name"] == "pic.png"
    assert (base_dir / "input" / "pic.png").read_bytes() == second
    assert not [f for f in os.listdir(base_dir / "input") if f.endswith(".tmp")]


def test_decompression_bomb_refused(server, base_dir):
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, format="PNG")  # tiny file, 400 megapixels
    status, body = upload(server, buffer.getvalue(), filename="bomb.png")
    assert status == 400 and "pixels" in body["error"]["message"]
    assert not (base_dir / "input" / "bomb.png").exists()
    assert server.get("/prompt")[0] == 200


def test_oversize_upload_refused(fresh_base_dir):
    base_dir = fresh_base_dir
    from .conftest import ServerProcess
    proc = ServerProcess(base_dir, ["--max-upload-size", "1"]).start()
    try:
        big = os.urandom(2 * 1024 * 1024)
        status, _ = upload(proc, big, filename="big.png")
        assert status == 413
        assert not (base_dir / "input" / "big.png").exists()
        assert proc.get("/prompt")[0] == 200
    finally:
        proc.stop()


def test_upload_mask_merges_alpha_and_keeps_text(server, base_dir):
    (base_dir / "input").mkdir(exist_ok=True)
    (base_dir / "input" / "orig.png").write_bytes(png_bytes((4, 4), (10, 20, 30, 255), text={"workflow": "{}"}))
    mask = png_bytes((4, 4), (0, 0, 0, 0))
    body, headers = multipart({"original_ref": '{"filename": "orig.png", "subfolder": "", "type": "input"}'},
                              filename="masked.png", data=mask)
    status, result = server.request("POST", "/upload/mask", body, headers=headers)
    assert status == 200 and result["name"] == "masked.png"
    merged = Image.open(base_dir / "input" / "masked.png")
    assert merged.getpixel((0, 0)) == (10, 20, 30, 0) and merged.text["workflow"] == "{}"
    body, headers = multipart({"original_ref": '{"filename": "../../x.png", "type": "input"}'}, data=mask)
    assert server.request("POST", "/upload/mask", body, headers=headers)[0] in (400, 403)


def test_view_metadata(server, base_dir):
    import json
    import struct
    header = json.dumps({"__metadata__": {"ss_network_dim": "4"}}).encode()
    kind = base_dir / "models" / "loras"
    kind.mkdir(parents=True, exist_ok=True)
    (kind / "l.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    assert server.get("/view_metadata/loras?filename=l.safetensors") == (200, {"ss_network_dim": "4"})
    assert server.get("/view_metadata/loras?filename=../../l.safetensors")[0] in (403, 404)
    assert server.get("/view_metadata/nope?filename=l.safetensors")[0] == 404


@pytest.mark.parametrize("node", [
    {"class_type": "LoadImage", "inputs": {"image": "../{secret}"}},
    {"class_type": "LoadImage", "inputs": {"image": "{abs}"}},
    {"class_type": "LoadImage", "inputs": {"image": "..\\{secret}"}},
    {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "../../{secret}"}},
    {"class_type": "VAELoader", "inputs": {"vae_name": "{abs}"}},
])
def test_path_like_widget_values_refused_at_validation(server, secret, node):
    for key, value in node["inputs"].items():
        node["inputs"][key] = value.format(secret=secret.name, abs=str(secret))
    prompt = {"1": node, "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
    status, body = server.post("/prompt", {"prompt": prompt})
    assert status == 400
    # LoadImage declares VALIDATE_INPUTS for `image`, which then replaces the built-in list check
    assert body["node_errors"]["1"]["errors"][0]["type"] in ("value_not_in_list", "custom_validation_failed")
    assert server.get("/queue")[1]["queue_pending"] == []


@pytest.mark.parametrize("prefix", ["../../escape", "/tmp/escape", "..\\..\\escape", "sub/../../escape", "a\x00b"])
def test_save_prefix_cannot_leave_output(server, base_dir, prefix):
    before = all_files(base_dir.parent)
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}}}
    status, body = server.post("/prompt", {"prompt": prompt})
    if status == 200:
        entry = server.wait_for_history(body["prompt_id"])
        assert entry["status"]["status_str"] == "error"
    new = set(all_files(base_dir.parent)) - set(before)
    assert not [n for n in new if not n.startswith(base_dir.name + os.sep + "output" + os.sep)], new
    assert server.get("/prompt")[0] == 200
