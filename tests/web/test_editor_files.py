"""Files, against the real server: build and run an image graph, save / reload / open through the
userdata API, drop a PNG the server wrote and get its workflow back, open a ComfyUI-saved workflow
(primitive, reroutes, groups, a bypassed and a muted node) and run it."""

import io
import json
import urllib.request
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).parent / "fixtures"


def _run(editor, timeout=30000):
    editor.js("() => { weft.execution.lastResult = null; }")
    editor.page.click("#queue-button")
    editor.page.wait_for_function("() => weft.execution.lastResult != null", timeout=timeout)
    error = editor.js("() => weft.execution.executionError")
    assert editor.js("() => weft.execution.lastResult.result") == "success", (error or {}).get("exception_message")
    editor.settle()


def _upload(editor, node_id, name, colour=(255, 0, 0)):
    """Pick a picture with the node's upload button; the combo then selects it."""
    picture = io.BytesIO()
    Image.new("RGB", (40, 24), colour).save(picture, "PNG")
    editor.upload_with_button(node_id, 1, name, picture.getvalue())


def _build_image_graph(editor):
    editor.new_workflow()
    load = editor.add_node_via_search("load image", editor.graph_to_client(0, 0), pick="LoadImage")
    invert = editor.add_node_via_search("invert image", editor.graph_to_client(420, 0), pick="ImageInvert")
    save = editor.add_node_via_search("save image", editor.graph_to_client(760, 0), pick="SaveImage")
    editor.connect(load, "IMAGE", invert, "image")
    editor.connect(invert, "IMAGE", save, "images")
    _upload(editor, load, "red.png")
    return load, invert, save


def _fetch(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def test_build_upload_and_run_an_image_graph_on_the_real_server(editor, web_server):
    load, invert, save = _build_image_graph(editor)  # uploads red.png through the node's button
    thumbnail = editor.js(f"() => weft.api.viewUrl({{filename: 'red.png', subfolder: '', type: 'input'}})")
    editor.page.wait_for_function("(u) => weft.view.images.status(u) === 'loaded'", arg=thumbnail)
    assert (web_server["base"] / "input" / "red.png").is_file()
    _run(editor)
    images = editor.js(f"() => weft.execution.outputFor('{save}').images")
    assert len(images) == 1
    url = editor.js("(img) => weft.api.viewUrl(img)", images[0])
    editor.page.wait_for_function("(u) => weft.view.images.status(u) === 'loaded'", arg=url)
    result = Image.open(io.BytesIO(_fetch(web_server["url"] + url)))
    assert result.size == (40, 24)
    assert result.convert("RGB").getpixel((5, 5)) == (0, 255, 255), "the real ImageInvert ran"


def test_save_reload_and_open_a_workflow_from_the_sidebar(editor, web_server):
    load, invert, save = _build_image_graph(editor)
    editor.js(f"() => weft.history.run(() => weft.doc.setTitle({invert}, 'Negative film'))")
    editor.page.keyboard.press("Control+s")
    editor.page.fill(".dialog-input", "film negative")
    editor.page.keyboard.press("Enter")
    editor.page.wait_for_selector(".toast >> text=Saved")
    saved = json.loads((web_server["base"] / "user" / "default" / "workflows" / "film negative.json").read_text())
    assert saved["version"] == 0.4 and len(saved["nodes"]) == 3 and len(saved["links"]) == 2
    editor.reload()
    editor.js("() => weft.commands.run('new')")
    assert editor.node_ids() == []
    editor.page.click("#workflows-toggle")
    editor.page.click('.workflow-item[data-name="film negative"] .workflow-open')
    editor.settle()
    titles = editor.js("() => [...weft.doc.nodes.values()].map((n) => weft.doc.titleOf(n)).sort()")
    assert titles == ["Load Image", "Negative film", "Save Image"]
    assert len(editor.links()) == 2
    assert editor.page.locator(".workflow-name").inner_text().startswith("film negative")


def test_reload_keeps_the_open_workflow(editor):
    _build_image_graph(editor)
    editor.page.wait_for_timeout(600)  # the session is written shortly after the last change
    editor.reload()
    assert sorted(editor.js("() => [...weft.doc.nodes.values()].map((n) => n.type)")) == ["ImageInvert", "LoadImage", "SaveImage"]


def test_drop_a_png_made_by_the_server_and_get_its_workflow_back(editor, web_server):
    load, invert, save = _build_image_graph(editor)
    editor.js(f"() => weft.history.run(() => weft.doc.setTitle({save}, 'Keep me'))")
    # A new prefix makes SaveImage run again (an unchanged prompt would replay a cached image).
    editor.js(f"() => weft.history.run(() => weft.doc.setWidgetValue({save}, 0, 'keep_me'))")
    _run(editor)
    image = editor.js(f"() => weft.execution.outputFor('{save}').images[0]")
    png = _fetch(web_server["url"] + editor.js("(img) => weft.api.viewUrl(img)", image))
    editor.js("() => weft.commands.run('new')")
    assert editor.node_ids() == []
    editor.drop_file(png, "result.png", "image/png")
    editor.page.wait_for_function("() => weft.doc.nodes.size === 3")
    titles = editor.js("() => [...weft.doc.nodes.values()].map((n) => weft.doc.titleOf(n)).sort()")
    assert titles == ["Invert Image Colors", "Keep me", "Load Image"]
    assert len(editor.links()) == 2


def test_drop_a_comfyui_png(editor):
    """A PNG written by ComfyUI (tEXt `prompt` and `workflow` chunks) restores its workflow."""
    workflow = json.loads((FIXTURES / "comfyui_image_workflow.json").read_text())
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps({"6": {"class_type": "SaveImage", "inputs": {}}}))
    info.add_text("workflow", json.dumps(workflow))
    data = io.BytesIO()
    Image.new("RGB", (8, 8)).save(data, "PNG", pnginfo=info)
    editor.drop_file(data.getvalue(), "ComfyUI_00001_.png", "image/png")
    editor.page.wait_for_function("() => weft.doc.nodes.size === 8")
    assert editor.js("() => weft.doc.groups.size") == 2


def test_open_a_comfyui_workflow_and_run_it(editor, web_server):
    text = (FIXTURES / "comfyui_image_workflow.json").read_bytes()
    editor.drop_file(text, "from_comfyui.json", "application/json")
    editor.page.wait_for_function("() => weft.doc.nodes.size === 8")
    editor.settle()
    state = editor.js("""() => ({
        groups: [...weft.doc.groups.values()].map((g) => [g.title, weft.doc.nodesInGroup(g.id)]),
        reroutePoints: weft.doc.reroutes.size,
        modes: Object.fromEntries([...weft.doc.nodes.values()].map((n) => [n.id, n.mode])),
        primitive: weft.doc.defOf(weft.doc.nodes.get(4)).widgets.map((w) => w.name),
        rerouteType: weft.doc.outputType(weft.doc.nodes.get(2), 0),
    })""")
    assert state["groups"] == [["Filters", [3, 5, 7]], ["Output", [6]]]
    assert state["reroutePoints"] == 1
    assert state["modes"]["5"] == 4 and state["modes"]["7"] == 2
    assert state["primitive"] == ["blur_radius", "control_after_generate"]
    assert state["rerouteType"] == "IMAGE"
    editor.snapshot("comfyui_workflow_opened")
    _run(editor)
    history = json.loads(_fetch(web_server["url"] + "/api/history?max_items=1"))
    prompt = next(iter(history.values()))["prompt"][2]
    # The server ran what the graph means: reroute and primitive resolved, invert bypassed, preview muted.
    assert sorted(prompt) == ["1", "3", "6"]
    assert prompt["3"]["inputs"] == {"image": ["1", 0], "blur_radius": 3, "sigma": 1.5}
    assert prompt["6"]["inputs"]["images"] == ["3", 0]
    assert prompt["6"]["inputs"]["filename_prefix"] == "from_comfyui"
    assert editor.js("() => weft.execution.outputFor('6').images.length") == 1


def test_open_a_schema_1_workflow_with_a_subgraph_and_run_it(editor, web_server):
    workflow = json.loads((FIXTURES / "workflow_schema1_subgraph.json").read_text())
    assert editor.load_workflow(workflow)
    editor.settle()
    instance = editor.js("() => { const n = weft.doc.nodes.get(2); return [weft.doc.titleOf(n), weft.doc.defOf(n).subgraph]; }")
    assert instance == ["Invert twice", True]
    assert editor.js("() => weft.placeableDefs().some((d) => d.displayName === 'Invert twice')")
    saved = editor.js("() => weft.files.workflow()")
    assert saved["version"] == 0.4 and saved["definitions"]["subgraphs"][0]["name"] == "Invert twice"
    assert _run_status(editor) == "success"
    history = json.loads(_fetch(web_server["url"] + "/api/history?max_items=1"))
    prompt = next(iter(history.values()))["prompt"][2]
    # The server flattened the subgraph: its two inner nodes ran under colon ids.
    assert sorted(prompt) == ["1", "2:1", "2:2", "3"]
    assert prompt["3"]["inputs"]["images"] == ["2:2", 0]


def _run_status(editor):
    editor.js("() => { weft.execution.lastResult = null; }")
    editor.page.click("#queue-button")
    editor.page.wait_for_function("() => weft.execution.lastResult != null", timeout=30000)
    editor.settle()
    return editor.js("() => weft.execution.lastResult.result")


def test_dropping_a_plain_image_on_load_image_uploads_it_there(editor, web_server):
    editor.new_workflow()
    load = editor.add_node_via_search("load image", editor.graph_to_client(0, 0), pick="LoadImage")
    data = io.BytesIO()
    Image.new("RGB", (20, 20), (0, 0, 255)).save(data, "PNG")
    r = editor.js(f"() => weft.view.nodeClientRect({load})")
    editor.drop_file(data.getvalue(), "dropped blue.png", "image/png", at=(r["x"] + r["w"] / 2, r["y"] + r["h"] - 20))
    editor.page.wait_for_function(f"() => weft.doc.nodes.get({load}).widgets_values[0] === 'dropped blue.png'")
    assert (web_server["base"] / "input" / "dropped blue.png").is_file()
    assert len(editor.node_ids()) == 1
    thumbnail = editor.js("() => weft.api.viewUrl({filename: 'dropped blue.png', subfolder: '', type: 'input'})")
    editor.page.wait_for_function("(u) => weft.view.images.status(u) === 'loaded'", arg=thumbnail)


@pytest.mark.parametrize("expected_console_errors", [[r"status of 409"]])
def test_save_as_an_existing_name_asks_before_replacing(editor, web_server, expected_console_errors):
    folder = web_server["base"] / "user" / "default" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "taken.json").write_text('{"nodes": [], "links": [], "version": 0.4}')
    editor.new_workflow()
    editor.add_node_via_search("invert image", editor.graph_to_client(0, 0))
    editor.js("() => { weft.commands.run('save-as'); }")
    editor.page.fill(".dialog-input", "taken")
    editor.page.keyboard.press("Enter")
    editor.page.wait_for_selector(".dialog >> text=Replace “taken”?")
    editor.page.click(".dialog button >> text=Cancel")
    assert json.loads((folder / "taken.json").read_text())["nodes"] == []
    editor.js("() => { weft.commands.run('save-as'); }")
    editor.page.fill(".dialog-input", "taken")
    editor.page.keyboard.press("Enter")
    editor.page.click(".dialog button >> text=Replace")
    editor.page.wait_for_selector(".toast >> text=Saved")
    assert len(json.loads((folder / "taken.json").read_text())["nodes"]) == 1


def test_a_png_with_only_an_api_prompt_is_laid_out_and_runs(editor, web_server):
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 8, "batch_size": 1, "color": 0xFF0000}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "from_api"}, "_meta": {"title": "Out"}},
    }
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(prompt))
    data = io.BytesIO()
    Image.new("RGB", (8, 8)).save(data, "PNG", pnginfo=info)
    editor.drop_file(data.getvalue(), "api_only.png", "image/png")
    editor.page.wait_for_function("() => weft.doc.nodes.size === 3")
    assert len(editor.links()) == 2
    assert _run_status(editor) == "success"
    out = next(n for n in editor.node_ids("SaveImage"))
    image = editor.js(f"() => weft.execution.outputFor('{out}').images[0]")
    pixel = Image.open(io.BytesIO(_fetch(web_server["url"] + editor.js("(i) => weft.api.viewUrl(i)", image)))).convert("RGB").getpixel((0, 0))
    assert pixel == (0, 255, 255)


def test_filename_prefix_patterns_are_filled_in_and_the_image_keeps_them(editor, web_server):
    import datetime

    editor.new_workflow()
    save = editor.js("""() => weft.history.run(() => {
        const empty = weft.doc.addNode('EmptyImage', [0, 0]);
        weft.doc.setTitle(empty.id, 'Size');
        const names = weft.doc.defOf(empty).widgets.map((w) => w.name);
        weft.doc.setWidgetValue(empty.id, names.indexOf('width'), 16);
        weft.doc.setWidgetValue(empty.id, names.indexOf('height'), 8);
        const save = weft.doc.addNode('SaveImage', [400, 0]);
        weft.doc.setWidgetValue(save.id, 0, 'dated/%date:yyyy%_%Size.width%');
        weft.doc.connect(empty.id, 0, save.id, 0);
        return save.id;
    })""")
    assert _run_status(editor) == "success"
    image = editor.js(f"() => weft.execution.outputFor('{save}').images[0]")
    assert image["subfolder"] == "dated"
    assert image["filename"].startswith(f"{datetime.date.today().year}_16")
    png = Image.open(io.BytesIO(_fetch(web_server["url"] + editor.js("(i) => weft.api.viewUrl(i)", image))))
    embedded = json.loads(png.text["workflow"])
    assert next(n for n in embedded["nodes"] if n["type"] == "SaveImage")["widgets_values"] == ["dated/%date:yyyy%_%Size.width%"]


def test_open_a_subgraph_edit_it_and_run_the_workflow(editor, web_server):
    workflow = json.loads((FIXTURES / "workflow_schema1_subgraph.json").read_text())
    assert editor.load_workflow(workflow)
    editor.settle()
    r = editor.js("() => weft.view.nodeClientRect(2)")
    editor.page.mouse.dblclick(r["x"] + r["w"] / 2, r["y"] + r["h"] - 8)
    editor.page.wait_for_selector("#breadcrumb:not([hidden])")
    assert editor.page.locator("#breadcrumb .crumb.current").inner_text() == "Invert twice"
    assert sorted(editor.node_ids()) == [-20, -10, 1, 2]
    # Put a blur between the second invert and the subgraph's output, by dragging links.
    blur = editor.add_node_via_search("image blur", editor.graph_to_client(300, 220), pick="ImageBlur")
    editor.connect(2, "IMAGE", blur, "image")
    editor.drag(editor.socket_point(blur, "output", 0), editor.socket_point(-20, "input", 0))
    assert [l["origin_id"] for l in editor.links_into(-20)] == [blur]
    editor.snapshot("inside_a_subgraph")
    # Queueing from inside runs the whole workflow, with the edit.
    assert _run_status(editor) == "success"
    history = json.loads(_fetch(web_server["url"] + "/api/history?max_items=1"))
    prompt = next(iter(history.values()))["prompt"][2]
    assert sorted(prompt) == ["1", "2:1", "2:2", f"2:{blur}", "3"]
    assert prompt["3"]["inputs"]["images"] == [f"2:{blur}", 0]
    editor.page.keyboard.press("Escape")
    editor.page.wait_for_selector("#breadcrumb", state="hidden")
    assert sorted(editor.node_ids()) == [1, 2, 3]
    definition = editor.js("() => weft.files.workflow().definitions.subgraphs[0]")
    assert sorted(n["type"] for n in definition["nodes"]) == ["ImageBlur", "ImageInvert", "ImageInvert"]
    [out_link] = definition["outputs"][0]["linkIds"]
    assert next(l for l in definition["links"] if l["id"] == out_link)["origin_id"] == blur


def test_open_a_comfyui_text_to_image_workflow_and_run_it(editor, web_server):
    """ComfyUI's own save of a text-to-image graph: a primitive drives the seed, a Reroute node carries
    the VAE, a reroute point sits on a link, two groups, a muted preview, a note."""
    editor.drop_file((FIXTURES / "comfyui_workflow_0_4.json").read_bytes(), "txt2img.json", "application/json")
    editor.page.wait_for_function("() => weft.doc.nodes.size === 11")
    assert editor.js("() => weft.doc.groups.size") == 2 and editor.js("() => weft.doc.reroutes.size") == 1
    editor.snapshot("comfyui_txt2img_opened")
    assert _run_status(editor) == "success"
    history = json.loads(_fetch(web_server["url"] + "/api/history?max_items=1"))
    prompt = next(iter(history.values()))["prompt"][2]
    assert sorted(prompt) == ["1", "2", "3", "4", "5", "6", "7"]
    assert prompt["5"]["inputs"]["seed"] == 42 and prompt["5"]["inputs"]["steps"] == 2
    assert prompt["6"]["inputs"]["vae"] == ["1", 2]
    assert prompt["2"]["inputs"]["text"] == "a red fox in the snow"
    images = editor.js("() => weft.execution.outputFor('7').images")
    assert len(images) == 1 and images[0]["filename"].startswith("from-comfyui")
