"""Workflow templates in a real server: ComfyUI's template files (the pinned
comfyui-workflow-templates-json package) with Weft's own category merged into ``index.json``,
node packs' example workflows, path escapes refused, and ``/template_catalogue`` telling which
node types and model files a template needs that this server lacks."""

from __future__ import annotations

import http.client
import importlib.util
import io
import json
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from api.templates import ModelInventory, WorkflowNeeds, missing_models, workflow_needs
from graph.folders import FolderPaths

from .conftest import REPO, ServerProcess

WEFT_TEMPLATES = REPO / "workflow_templates"
COMFYUI_TEMPLATES = Path(next(iter(importlib.util.find_spec("comfyui_workflow_templates_json")
                                   .submodule_search_locations))) / "templates"
STARTER_NAMES = ["weft_text_to_image", "weft_image_to_image", "weft_inpainting", "weft_seed_variations"]
#: The paper's models' templates and the checkpoint each names (not in this server's folders).
LDM_CHECKPOINTS = {
    "weft_ldm_text_to_image": "ldm-txt2img-f8-large.ckpt", "weft_ldm_unconditional": "ldm-celeba256.ckpt",
    "weft_ldm_class_conditional": "ldm-cin256-v2.ckpt", "weft_ldm_super_resolution": "ldm-bsr-sr.ckpt",
    "weft_ldm_inpainting": "ldm-inpainting-big.ckpt", "weft_ldm_semantic_synthesis": "ldm-semantic-synthesis256.ckpt",
    "weft_ldm_semantic_synthesis_512x1024": "ldm-semantic-synthesis256.ckpt",
    "weft_ldm_layout_to_image": "ldm-layout2img-openimages256.ckpt",
}
WEFT_NAMES = STARTER_NAMES + list(LDM_CHECKPOINTS)

#: A pack example with a subgraph: an unknown node inside it, a Note and the subgraph instance
#: beside it, and a loader widget naming a model file nobody has.
SUBGRAPH_ID = "5b1c7d2e-0000-4000-8000-000000000001"
PACK_WORKFLOW = {
    "version": 0.4, "last_node_id": 3, "last_link_id": 0, "links": [], "groups": [], "config": {}, "extra": {},
    "nodes": [
        {"id": 1, "type": "Note", "pos": [0, 0], "size": [200, 80], "widgets_values": ["hello"]},
        {"id": 2, "type": SUBGRAPH_ID, "pos": [300, 0], "size": [200, 80], "widgets_values": []},
        {"id": 3, "type": "CheckpointLoaderSimple", "pos": [0, 200], "size": [200, 80],
         "widgets_values": ["ghost_model.safetensors"]},
    ],
    "definitions": {"subgraphs": [{"id": SUBGRAPH_ID, "name": "inner", "nodes": [
        {"id": 1, "type": "NotAWeftNode", "widgets_values": ["ghost_unet.gguf"]},
        {"id": 2, "type": "Reroute"}]}]},
}


@pytest.fixture(scope="module")
def templates_base(base_dir):
    """The module's base folder: the repository's checkpoints (the starter model), a loaded pack
    with example workflows and a thumbnail, and a pack that fails to import but has examples too."""
    (base_dir / "extra_model_paths.yaml").write_text(
        f"repository:\n  base_path: {json.dumps(str(REPO / 'models'))}\n  checkpoints: checkpoints\n")
    pack = base_dir / "custom_nodes" / "demo_pack"
    (pack / "example_workflows").mkdir(parents=True)
    (pack / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    (pack / "example_workflows" / "subgraph_demo.json").write_text(json.dumps(PACK_WORKFLOW))
    (pack / "example_workflows" / "starter_copy.json").write_bytes((WEFT_TEMPLATES / "weft_text_to_image.json").read_bytes())
    Image.new("RGB", (8, 8), (200, 30, 30)).save(pack / "example_workflows" / "starter_copy.webp")
    (pack / "secret.txt").write_text("pack secret")
    broken = base_dir / "custom_nodes" / "broken_examples_pack"
    (broken / "examples").mkdir(parents=True)
    (broken / "__init__.py").write_text("raise RuntimeError('this pack does not load')\n")
    (broken / "examples" / "never_listed.json").write_text("{}")
    (base_dir / "models" / "checkpoints").mkdir(parents=True, exist_ok=True)
    return base_dir


@pytest.fixture(scope="module")
def templates_server(templates_base):
    proc = ServerProcess(templates_base).start()
    yield proc
    proc.stop()


def _raw_get(server: ServerProcess, path: str) -> tuple[int, bytes]:
    """GET with the path sent exactly as written (no client-side normalising of ``..``)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _catalogue(server: ServerProcess) -> dict[str, dict]:
    status, body = server.get("/template_catalogue")
    assert status == 200
    return {entry["id"]: entry for entry in body["templates"]}


# -- the files ComfyUI's frontend fetches ------------------------------------------------------------
def test_index_json_is_comfyuis_with_the_weft_category_first(templates_server):
    package_index = json.loads((COMFYUI_TEMPLATES / "index.json").read_text(encoding="utf-8"))
    for prefix in ("", "/api"):
        status, index = templates_server.get(prefix + "/templates/index.json")
        assert status == 200
        weft, *comfyui = index
        assert comfyui == package_index, "ComfyUI's categories are served unchanged"
        assert weft["title"] == weft["category"] == "Weft" and weft["moduleName"] == "default"
        assert [t["name"] for t in weft["templates"]] == WEFT_NAMES
    status, french = templates_server.get("/templates/index.fr.json")
    assert status == 200 and french[0]["title"] == "Weft"
    assert french[1:] == json.loads((COMFYUI_TEMPLATES / "index.fr.json").read_text(encoding="utf-8"))
    assert templates_server.get("/templates/index.xx.json")[0] == 404  # the frontend falls back to index.json


def test_weft_index_keeps_comfyuis_index_shape():
    """Only the fields ComfyUI's index schema allows; every file it names exists; io node ids point
    at nodes of that type."""
    schema = json.loads((COMFYUI_TEMPLATES / "index.schema.json").read_text())["definitions"]
    [category] = json.loads((WEFT_TEMPLATES / "index.json").read_text())
    assert set(category) <= set(schema["templateCategory"]["properties"])
    assert set(schema["templateCategory"]["required"]) <= set(category)
    for template in category["templates"]:
        assert set(template) <= set(schema["templateInfo"]["properties"]), template["name"]
        assert set(schema["templateInfo"]["required"]) <= set(template)
        workflow = json.loads((WEFT_TEMPLATES / f"{template['name']}.json").read_text())
        assert workflow["version"] == 0.4
        assert (WEFT_TEMPLATES / f"{template['name']}-1.{template['mediaSubtype']}").is_file()
        types = {node["id"]: node["type"] for node in workflow["nodes"]}
        for item in template["io"].get("inputs", []) + template["io"]["outputs"]:
            assert types[item["nodeId"]] == item["nodeType"]
        for item in template["io"].get("inputs", []):
            assert (WEFT_TEMPLATES / item["file"]).is_file()


def test_template_files_are_served(templates_server):
    status, body = templates_server.get("/templates/sdxl_simple_example.json")
    assert status == 200 and body == json.loads((COMFYUI_TEMPLATES / "sdxl_simple_example.json").read_text())
    status, body = templates_server.get("/api/templates/fuse_options.json")
    assert status == 200 and body == json.loads((COMFYUI_TEMPLATES / "fuse_options.json").read_text())
    status, body = templates_server.get("/templates/weft_text_to_image.json")
    assert status == 200 and body == json.loads((WEFT_TEMPLATES / "weft_text_to_image.json").read_text())
    status, picture = templates_server.get("/templates/weft_text_to_image-1.webp")
    assert status == 200 and Image.open(io.BytesIO(picture)).format == "WEBP"
    assert templates_server.get("/templates/no_such_template.json")[0] == 404


@pytest.mark.parametrize("path", [
    "/templates/../server.py", "/templates/../../../../etc/passwd", "/templates/..%2Fserver.py",
    "/templates/%2e%2e/%2e%2e/server.py", "/api/templates/..%2f..%2fserver.py", "/templates//etc/passwd",
    "/templates/%2Fetc%2Fpasswd", "/templates/..%5Cserver.py", "/templates/index.json%00.py",
    "/workflow_templates/demo_pack/../secret.txt", "/workflow_templates/demo_pack/..%2Fsecret.txt",
    "/workflow_templates/demo_pack/%2e%2e/secret.txt", "/api/workflow_templates/demo_pack/..%2F__init__.py",
])
def test_path_escapes_are_refused(templates_server, path):
    status, body = _raw_get(templates_server, path)
    assert status in (400, 403, 404), (path, status)
    assert not any(secret in body for secret in (b"import", b"root:", b"pack secret", b"NODE_CLASS_MAPPINGS"))


# -- node packs' example workflows --------------------------------------------------------------------
def test_workflow_templates_lists_loaded_packs_examples(templates_server):
    status, listing = templates_server.get("/workflow_templates")
    assert status == 200
    assert listing == {"demo_pack": ["starter_copy", "subgraph_demo"]}, "a pack that failed to load is not listed"
    status, body = templates_server.get("/api/workflow_templates/demo_pack/subgraph_demo.json")
    assert status == 200 and body == PACK_WORKFLOW
    assert templates_server.get("/workflow_templates/demo_pack/missing.json")[0] == 404
    assert templates_server.get("/workflow_templates/broken_examples_pack/never_listed.json")[0] == 404


# -- the catalogue ------------------------------------------------------------------------------------
def test_catalogue_says_what_each_template_lacks(templates_server):
    status, object_info = templates_server.get("/object_info")
    assert status == 200
    catalogue = _catalogue(templates_server)
    weft = [entry for entry in catalogue.values() if entry["source"] == "weft"]
    assert [entry["name"] for entry in weft] == WEFT_NAMES
    for entry in weft:
        missing = ([{"name": LDM_CHECKPOINTS[entry["name"]], "directory": "checkpoints"}]
                   if entry["name"] in LDM_CHECKPOINTS else [])
        assert entry["missing_nodes"] == [] and entry["missing_models"] == missing, entry
        assert entry["category"] == "Weft" and entry["thumbnail"] == f"/templates/{entry['name']}-1.webp"
        assert templates_server.get(entry["workflow"])[0] == 200
    assert catalogue["weft/weft_inpainting"]["inputs"] == [
        {"file": "weft_input_red_circle_masked.png", "url": "/templates/weft_input_red_circle_masked.png"}]

    comfyui = [entry for entry in catalogue.values() if entry["source"] == "comfyui"]
    package_names = {t["name"] for c in json.loads((COMFYUI_TEMPLATES / "index.json").read_text()) for t in c["templates"]}
    assert {entry["name"] for entry in comfyui} == package_names, "every category, every template"
    for entry in comfyui:  # missing means: not in /object_info (and never a frontend-only type)
        assert not set(entry["missing_nodes"]) & (set(object_info) | {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})
        assert entry["thumbnail"] is None, "the media packages are not installed here"
    # Wan 2.2 image-to-video: its Wan node sits inside a subgraph; the subgraph's id is no node type.
    wan = catalogue["comfyui/video_wan2_2_14B_i2v"]
    assert "WanImageToVideo" in wan["missing_nodes"]
    assert not any(len(t) == 36 and t.count("-") == 4 for t in wan["missing_nodes"])
    assert {"name": "wan_2.1_vae.safetensors", "directory": "vae"} in wan["missing_models"]
    # SDXL with the refiner: nodes Weft has; the checkpoints it names are absent.
    sdxl = catalogue["comfyui/sdxl_refiner_prompt_example"]
    assert sdxl["missing_nodes"] == []
    assert {m["name"] for m in sdxl["missing_models"]} == {"sd_xl_base_1.0.safetensors", "sd_xl_refiner_1.0.safetensors"}


def test_catalogue_follows_model_folders_and_changed_files(templates_server, templates_base):
    entry = _catalogue(templates_server)["pack:demo_pack/subgraph_demo"]
    assert entry["missing_nodes"] == ["NotAWeftNode"]
    assert entry["missing_models"] == [{"name": "ghost_model.safetensors", "directory": "checkpoints"},
                                       {"name": "ghost_unet.gguf", "directory": None}]
    assert entry["workflow"] == "/workflow_templates/demo_pack/subgraph_demo.json" and entry["thumbnail"] is None
    copy = _catalogue(templates_server)["pack:demo_pack/starter_copy"]
    assert copy["thumbnail"] == "/workflow_templates/demo_pack/starter_copy.webp"
    assert templates_server.get(copy["thumbnail"])[0] == 200

    # A model file appears (in a subfolder): no longer missing. The workflow changes: read again.
    (templates_base / "models" / "checkpoints" / "mine").mkdir(exist_ok=True)
    (templates_base / "models" / "checkpoints" / "mine" / "ghost_model.safetensors").write_bytes(b"x")
    changed = json.loads(json.dumps(PACK_WORKFLOW))
    changed["nodes"].append({"id": 4, "type": "AnotherMissingNode", "pos": [0, 0], "size": [10, 10]})
    path = templates_base / "custom_nodes" / "demo_pack" / "example_workflows" / "subgraph_demo.json"
    path.write_text(json.dumps(changed))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    entry = _catalogue(templates_server)["pack:demo_pack/subgraph_demo"]
    assert entry["missing_nodes"] == ["AnotherMissingNode", "NotAWeftNode"]
    assert entry["missing_models"] == [{"name": "ghost_unet.gguf", "directory": None}]
    sdxl = _catalogue(templates_server)["comfyui/sdxl_simple_example"]
    assert {m["name"] for m in sdxl["missing_models"]} == {"sd_xl_base_1.0.safetensors", "sd_xl_refiner_1.0.safetensors"}


# -- the parts, without a server ----------------------------------------------------------------------
def test_workflow_needs_reads_models_lists_and_loader_widgets():
    workflow = {
        "models": [{"name": "base.safetensors", "directory": "checkpoints", "url": "https://example/base"}],
        "nodes": [
            {"type": "CheckpointLoaderSimple", "widgets_values": ["base.safetensors"]},
            {"type": "LoraLoader", "widgets_values": ["sub\\style.safetensors", 1.0, 1.0]},
            {"type": "UNETLoader", "widgets_values": {"unet_name": "flux.gguf"},
             "properties": {"models": [{"name": "vae.sft", "directory": "vae"}]}},
            {"type": "PrimitiveNode", "widgets_values": ["a prompt, not a model"]},
        ],
    }
    needs = workflow_needs(workflow)
    assert needs == WorkflowNeeds(frozenset({"CheckpointLoaderSimple", "LoraLoader", "UNETLoader"}),
                                  (("base.safetensors", "checkpoints"), ("vae.sft", "vae")),
                                  (("sub/style.safetensors", "loras"), ("flux.gguf", "diffusion_models")))
    with pytest.raises(ValueError):
        workflow_needs(["not", "a", "workflow"])


def test_model_inventory_matches_kinds_aliases_and_subfolders(tmp_path):
    folders = FolderPaths.under(tmp_path)
    folders.ensure()
    (tmp_path / "models" / "text_encoders" / "t5").mkdir()
    (tmp_path / "models" / "text_encoders" / "t5" / "t5xxl.safetensors").write_bytes(b"x")
    (tmp_path / "models" / "diffusion_models" / "unet.gguf").write_bytes(b"x")
    inventory = ModelInventory.of(folders)
    assert inventory.has("t5xxl.safetensors", "clip") and inventory.has("t5/t5xxl.safetensors", "text_encoders")
    assert not inventory.has("t5xxl.safetensors", "vae") and not inventory.has("t5xxl.safetensors", "no_such_kind")
    assert inventory.has("unet.gguf") and inventory.has("unet.gguf", "unet")
    needs = WorkflowNeeds(frozenset(), (("t5xxl.safetensors", "text_encoders"), ("x.safetensors", "audio_encoders")),
                          (("unet.gguf", None), ("other.pt", "loras")))
    assert missing_models(needs, inventory) == [{"name": "x.safetensors", "directory": "audio_encoders"},
                                                {"name": "other.pt", "directory": "loras"}]
