"""Canvas interactions against the real server: pan, zoom (wheel, trackpad pinch, touch pinch),
widgets (numbers, combos, toggles, text), selection, clipboard (also across tabs), groups, reroute
points, collapse / bypass / mute, titles, fit-to-view, widget <-> input conversion."""

import pytest

pytestmark = pytest.mark.browser


def _place(editor, query, at_graph, pick=None):
    return editor.add_node_via_search(query, editor.graph_to_client(*at_graph), pick=pick)


def _widget_point(editor, node_id, index, fraction=0.5):
    r = editor.js(f"() => weft.view.widgetClientRect({node_id}, {index})")
    return r["x"] + r["w"] * fraction, r["y"] + r["h"] / 2


def _values(editor, node_id):
    return editor.node(node_id)["widgets_values"]


def test_pan_and_zoom_around_the_pointer(editor):
    editor.new_workflow(scale=1.0, offset=(0, 0))
    start = editor.empty_point()
    editor.drag(start, (start[0] + 120, start[1] + 60))
    ds = editor.js("() => weft.view.viewport.ds")
    assert ds["offset"] == pytest.approx([120, 60])
    x, y = start
    under = editor.js(f"() => weft.view.graphPoint({{clientX: {x}, clientY: {y}}})")
    editor.page.mouse.move(x, y)
    editor.page.mouse.wheel(0, -300)
    editor.settle()
    assert editor.js("() => weft.view.viewport.scale") > 1.3
    assert editor.js(f"() => weft.view.graphPoint({{clientX: {x}, clientY: {y}}})") == pytest.approx(under, abs=0.01)
    # A trackpad pinch arrives as a ctrl+wheel; a touch pinch as two pointers moving apart.
    before = editor.js("() => weft.view.viewport.scale")
    editor.js(f"""() => weft.view.canvas.parentElement.dispatchEvent(new WheelEvent('wheel', {{deltaY: 40, ctrlKey: true, clientX: {x}, clientY: {y}, bubbles: true, cancelable: true}}))""")
    assert editor.js("() => weft.view.viewport.scale") < before
    before = editor.js("() => weft.view.viewport.scale")
    editor.js(f"""() => {{
        const c = weft.view.canvas;
        const ev = (type, id, dx) => c.dispatchEvent(new PointerEvent(type, {{pointerId: id, pointerType: 'touch', isPrimary: id === 11, clientX: {x} + dx, clientY: {y}, button: 0, bubbles: true}}));
        ev('pointerdown', 11, -20); ev('pointerdown', 12, 20);
        ev('pointermove', 11, -60); ev('pointermove', 12, 60);
        ev('pointerup', 11, -60); ev('pointerup', 12, 60);
    }}""")
    assert editor.js("() => weft.view.viewport.scale") == pytest.approx(before * 3, rel=0.05)


def test_number_widgets_step_drag_type_and_keep_their_limits(editor):
    editor.new_workflow(scale=1.0, offset=(40, 80))
    blur = _place(editor, "image blur", (100, 100), pick="ImageBlur")
    assert _values(editor, blur) == [1, 1.0]
    editor.page.mouse.click(*_widget_point(editor, blur, 0, 0.97))  # right arrow
    assert _values(editor, blur)[0] == 2
    editor.page.mouse.click(*_widget_point(editor, blur, 0, 0.03))  # left arrow
    editor.page.mouse.click(*_widget_point(editor, blur, 0, 0.03))  # at min 1 it stays
    assert _values(editor, blur)[0] == 1
    x, y = _widget_point(editor, blur, 0)
    editor.drag((x, y), (x + 60, y), steps=6)  # 6 px per step
    assert _values(editor, blur)[0] == 11
    editor.page.mouse.click(x, y)
    editor.page.wait_for_selector(".inline-editor")
    editor.page.keyboard.press("Control+a")
    editor.page.keyboard.type("99")
    editor.page.keyboard.press("Enter")
    assert _values(editor, blur)[0] == 31, "typed values are clamped to max"
    x, y = _widget_point(editor, blur, 1)
    editor.page.mouse.click(x, y)
    editor.page.keyboard.press("Control+a")
    editor.page.keyboard.type("2.345")
    editor.page.keyboard.press("Enter")
    assert _values(editor, blur)[1] == pytest.approx(2.3), "floats snap to their step"
    editor.page.mouse.click(*_widget_point(editor, blur, 1, 0.97))
    assert _values(editor, blur)[1] == pytest.approx(2.4)
    # Each of those was one undo step.
    editor.page.keyboard.press("Control+z")
    assert _values(editor, blur)[1] == pytest.approx(2.3)


def test_combo_toggle_and_text_widgets(editor):
    editor.new_workflow(scale=1.0, offset=(40, 80))
    case = _place(editor, "case converter", (60, 60), pick="CaseConverter")
    contains = _place(editor, "string contains", (60, 380), pick="StringContains")
    concat = _place(editor, "concatenate", (560, 60), pick="StringConcatenate")
    def_names = editor.js(f"() => weft.doc.defOf(weft.doc.nodes.get({case})).widgets.map((w) => w.name)")
    mode = def_names.index("mode")
    editor.page.mouse.click(*_widget_point(editor, case, mode))
    editor.page.wait_for_selector(".menu.picker")
    editor.page.keyboard.type("low")
    editor.page.keyboard.press("Enter")
    assert _values(editor, case)[mode] == "lowercase"
    editor.page.mouse.click(*_widget_point(editor, case, mode, 0.97))
    assert _values(editor, case)[mode] == "Capitalize"
    names = editor.js(f"() => weft.doc.defOf(weft.doc.nodes.get({contains})).widgets.map((w) => w.name)")
    flag = names.index("case_sensitive")
    editor.page.mouse.click(*_widget_point(editor, contains, flag))
    assert _values(editor, contains)[flag] is False
    # Multi-line text is a textarea; one editing session is one undo step.
    area = editor.page.locator(f'textarea.node-textarea[data-node-id="{case}"][data-widget="string"]')
    area.click()
    editor.page.keyboard.type("Hello there")
    editor.page.mouse.click(*editor.empty_point())
    assert _values(editor, case)[0] == "Hello there"
    editor.page.keyboard.press("Control+z")
    editor.settle()
    assert _values(editor, case)[0] == ""
    assert area.input_value() == ""
    # A single-line string opens an inline editor.
    names = editor.js(f"() => weft.doc.defOf(weft.doc.nodes.get({concat})).widgets.map((w) => w.name)")
    delim = names.index("delimiter")
    editor.page.mouse.click(*_widget_point(editor, concat, delim))
    editor.page.keyboard.type(" + ")
    editor.page.keyboard.press("Enter")
    assert _values(editor, concat)[delim] == " + "


def test_select_copy_paste_duplicate_and_delete(editor):
    editor.new_workflow(scale=1.0, offset=(40, 80))
    a = _place(editor, "invert image", (40, 40))
    b = _place(editor, "invert image", (340, 40))
    c = _place(editor, "image blur", (40, 300), pick="ImageBlur")
    editor.connect(a, "IMAGE", b, "image")
    # Box select (ctrl-drag on empty canvas) catches a and b only.
    x0, y0 = editor.graph_to_client(20, -10)
    x1, y1 = editor.graph_to_client(600, 120)
    editor.page.keyboard.down("Control")
    editor.drag((x0, y0), (x1, y1))
    editor.page.keyboard.up("Control")
    assert sorted(editor.js("() => [...weft.selection.nodes]")) == [a, b]
    # Shift-click adds c; shift-click again removes it.
    editor.page.keyboard.down("Shift")
    editor.page.mouse.click(*editor.node_title_point(c))
    assert sorted(editor.js("() => [...weft.selection.nodes]")) == [a, b, c]
    editor.page.mouse.click(*editor.node_title_point(c))
    editor.page.keyboard.up("Shift")
    assert sorted(editor.js("() => [...weft.selection.nodes]")) == [a, b]
    editor.page.keyboard.press("Control+c")
    editor.page.mouse.move(*editor.graph_to_client(700, 400))
    editor.page.keyboard.press("Control+v")
    editor.settle()
    pasted = sorted(set(editor.node_ids()) - {a, b, c})
    assert len(pasted) == 2 and len(editor.links()) == 2
    editor.page.keyboard.press("Control+d")
    assert len(editor.node_ids()) == 7 and len(editor.links()) == 3
    editor.page.keyboard.press("Delete")
    assert len(editor.node_ids()) == 5
    editor.page.keyboard.press("Control+z")
    assert len(editor.node_ids()) == 7


def test_paste_in_another_tab(editor, context):
    editor.new_workflow(scale=1.0, offset=(40, 80))
    a = _place(editor, "image blur", (40, 40), pick="ImageBlur")
    editor.js(f"() => weft.history.run(() => weft.doc.setWidgetValue({a}, 0, 7))")
    editor.page.mouse.click(*editor.node_title_point(a))
    editor.page.keyboard.press("Control+c")
    other = context.new_page()
    errors = []
    other.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    from editor_driver import Editor
    second = Editor(other, editor.url)
    second.open()
    second.new_workflow()
    other.mouse.move(*second.graph_to_client(200, 200))
    other.keyboard.press("Control+v")
    second.settle()
    nodes = second.js("() => [...weft.doc.nodes.values()].map((n) => [n.type, n.widgets_values])")
    assert nodes == [["ImageBlur", [7, 1.0]]]
    assert not errors
    other.close()


def test_groups_create_title_move_with_their_nodes_and_resize(editor):
    editor.new_workflow(scale=1.0, offset=(40, 80))
    a = _place(editor, "invert image", (60, 80))
    b = _place(editor, "invert image", (360, 80))
    outside = _place(editor, "invert image", (60, 420))
    editor.js(f"() => weft.selection.set({{nodes: [{a}, {b}]}})")
    editor.page.keyboard.press("Control+g")
    editor.page.wait_for_selector(".inline-editor")
    editor.page.keyboard.press("Control+a")
    editor.page.keyboard.type("Inverters")
    editor.page.keyboard.press("Enter")
    group = editor.js("() => [...weft.doc.groups.values()][0]")
    assert group["title"] == "Inverters"
    assert editor.js(f"() => weft.doc.nodesInGroup({group['id']})") == [a, b]
    gx, gy, gw, gh = group["bounding"]
    before = {n: editor.node(n)["pos"] for n in (a, b, outside)}
    editor.drag(editor.graph_to_client(gx + 60, gy + 12), editor.graph_to_client(gx + 160, gy + 62))
    after = {n: editor.node(n)["pos"] for n in (a, b, outside)}
    assert after[a] == [before[a][0] + 100, before[a][1] + 50]
    assert after[b] == [before[b][0] + 100, before[b][1] + 50]
    assert after[outside] == before[outside]
    moved = editor.js("() => [...weft.doc.groups.values()][0].bounding")
    assert moved[:2] == [gx + 100, gy + 50]
    editor.drag(editor.graph_to_client(moved[0] + gw - 4, moved[1] + gh - 4), editor.graph_to_client(moved[0] + gw + 96, moved[1] + gh + 46))
    assert editor.js("() => [...weft.doc.groups.values()][0].bounding")[2:] == [gw + 100, gh + 50]
    editor.page.keyboard.press("Control+z")
    editor.page.keyboard.press("Control+z")
    assert editor.node(a)["pos"] == before[a]


def test_reroute_points_on_a_link(editor):
    editor.new_workflow(scale=1.0, offset=(40, 80))
    a = _place(editor, "invert image", (40, 60))
    b = _place(editor, "invert image", (600, 260))
    editor.connect(a, "IMAGE", b, "image")
    marker = editor.js("() => weft.view.linkMarkers[0]")
    editor.page.mouse.click(*editor.graph_to_client(marker["x"], marker["y"]))
    editor.page.click(".menu-item >> text=Add reroute point here")
    reroute = editor.js("() => [...weft.doc.reroutes.values()][0]")
    assert reroute["pos"] == [round(marker["x"]), round(marker["y"])]
    link = editor.links()[0]
    assert link["parentId"] == reroute["id"]
    editor.drag(editor.graph_to_client(*reroute["pos"]), editor.graph_to_client(reroute["pos"][0], reroute["pos"][1] + 150))
    assert editor.js("() => [...weft.doc.reroutes.values()][0].pos") == [reroute["pos"][0], reroute["pos"][1] + 150]
    saved = editor.js("() => weft.files.workflow()")
    assert saved["extra"]["reroutes"] == [{"id": reroute["id"], "pos": [reroute["pos"][0], reroute["pos"][1] + 150], "linkIds": [link["id"]]}]
    # Shift-drag from the reroute point starts a second link from the same source.
    c = _place(editor, "invert image", (600, 520))
    point = editor.js("() => [...weft.doc.reroutes.values()][0].pos")
    editor.page.keyboard.down("Shift")
    editor.drag(editor.graph_to_client(*point), editor.socket_point(c, "input", 0))
    editor.page.keyboard.up("Shift")
    branch = editor.links_into(c)[0]
    assert branch["origin_id"] == a and branch["parentId"] == reroute["id"]


def test_collapse_bypass_mute_rename_and_fit(editor):
    editor.new_workflow(scale=1.0, offset=(40, 80))
    a = _place(editor, "invert image", (60, 60))
    editor.page.mouse.click(*editor.node_title_point(a))
    editor.page.keyboard.press("Control+b")
    assert editor.node(a)["mode"] == 4
    editor.page.keyboard.press("Control+m")
    assert editor.node(a)["mode"] == 2
    editor.page.keyboard.press("Control+m")
    assert editor.node(a)["mode"] == 0
    editor.page.keyboard.press("Alt+c")
    assert editor.node(a)["flags"] == {"collapsed": True}
    editor.page.keyboard.press("Alt+c")
    assert editor.node(a)["flags"] == {}
    editor.page.mouse.dblclick(*editor.node_title_point(a))
    editor.page.wait_for_selector(".inline-editor")
    editor.page.keyboard.press("Control+a")
    editor.page.keyboard.type("Flip colours")
    editor.page.keyboard.press("Enter")
    assert editor.node(a)["title"] == "Flip colours"
    editor.js("() => { weft.view.viewport.ds = {scale: 0.2, offset: [4000, 4000]}; weft.selection.clear(); }")
    editor.page.mouse.click(*editor.empty_point())
    editor.page.keyboard.press(".")
    editor.settle()
    rect = editor.js(f"() => weft.view.nodeClientRect({a})")
    canvas = editor.js("() => weft.view.canvas.getBoundingClientRect().toJSON()")
    assert canvas["left"] <= rect["x"] and rect["x"] + rect["w"] <= canvas["right"]
    assert canvas["top"] <= rect["y"] and rect["y"] + rect["h"] <= canvas["bottom"]


def test_widget_to_input_and_back(editor):
    editor.new_workflow(scale=1.0, offset=(300, 80))
    blur = _place(editor, "image blur", (100, 100), pick="ImageBlur")
    editor.page.mouse.click(*editor.node_title_point(blur), button="right")
    editor.page.hover(".menu-item >> text=Convert widget to input")
    editor.page.click(".menu[data-depth='1'] .menu-item >> text=blur_radius")
    primitive = editor.node_ids("PrimitiveNode")[0]
    link = editor.links_into(blur)[0]
    assert link["origin_id"] == primitive and link["type"] == "INT"
    assert editor.node(primitive)["widgets_values"] == [1, "fixed"]
    # The primitive's value drives the widget.
    editor.page.mouse.click(*_widget_point(editor, primitive, 0, 0.97))
    assert _values(editor, blur)[0] == 2
    # Dragging a PrimitiveFloat onto the sigma widget turns it into an input too.
    prim_float = _place(editor, "primitive float", (-250, 400), pick="PrimitiveFloat")
    editor.drag(editor.socket_point(prim_float, "output", 0), _widget_point(editor, blur, 1))
    assert editor.js(f"() => weft.doc.isWidgetLinked(weft.doc.nodes.get({blur}), 'sigma')") is True
    # And back: the link goes, the widget returns.
    editor.page.mouse.click(*editor.node_title_point(blur), button="right")
    editor.page.hover(".menu-item >> text=Convert input to widget")
    editor.page.click(".menu[data-depth='1'] .menu-item >> text=sigma")
    assert editor.js(f"() => weft.doc.isWidgetLinked(weft.doc.nodes.get({blur}), 'sigma')") is False
    assert [i["name"] for i in editor.node(blur)["inputs"]] == ["image", "blur_radius"]


def test_right_click_menu_and_keyboard_search_add_nodes(editor):
    editor.new_workflow(scale=1.0, offset=(40, 80))
    x, y = editor.graph_to_client(80, 80)
    editor.page.mouse.click(x, y, button="right")
    editor.page.hover(".menu-item >> text=Add Node")
    editor.page.hover(".menu[data-depth='1'] .menu-item >> text=image")
    editor.page.click(".menu[data-depth='2'] .menu-item >> text=\"Empty Image\"")
    empty = editor.node_ids("EmptyImage")
    assert len(empty) == 1
    assert editor.node(empty[0])["pos"] == [80, 80 + 30]
    # Search by keyboard: type, walk the list with the arrows, Enter adds the highlighted one.
    editor.page.mouse.dblclick(*editor.graph_to_client(500, 80))
    editor.page.keyboard.type("image")
    editor.page.keyboard.press("ArrowDown")
    editor.page.keyboard.press("ArrowDown")
    chosen = editor.page.locator(".search-item.active").get_attribute("data-type")
    editor.page.keyboard.press("Enter")
    assert len(editor.node_ids(chosen)) == (2 if chosen == "EmptyImage" else 1)
    # Escape closes the search without adding anything.
    before = len(editor.node_ids())
    editor.page.mouse.dblclick(*editor.graph_to_client(500, 400))
    editor.page.keyboard.type("blur")
    editor.page.keyboard.press("Escape")
    assert editor.page.locator(".search").count() == 0 and len(editor.node_ids()) == before


def test_ctrl_enter_queues_and_the_viewer_walks_a_batch(editor, web_server):
    editor.new_workflow(scale=1.0, offset=(40, 80))
    ids = editor.js("""() => weft.history.run(() => {
        const empty = weft.doc.addNode('EmptyImage', [0, 0]);
        const save = weft.doc.addNode('SaveImage', [400, 0]);
        const names = weft.doc.defOf(empty).widgets.map((w) => w.name);
        weft.doc.setWidgetValue(empty.id, names.indexOf('width'), 24);
        weft.doc.setWidgetValue(empty.id, names.indexOf('height'), 16);
        weft.doc.setWidgetValue(empty.id, names.indexOf('batch_size'), 3);
        weft.doc.setWidgetValue(empty.id, names.indexOf('color'), 0x3366ff);
        weft.doc.connect(empty.id, 0, save.id, 0);
        return [empty.id, save.id];
    })""")
    save = ids[1]
    editor.page.mouse.click(*editor.empty_point())
    editor.page.keyboard.press("Control+Enter")
    editor.page.wait_for_function("() => weft.execution.lastResult?.result === 'success'", timeout=30000)
    editor.page.wait_for_function(f"() => weft.view.mediaCells.get({save})?.length === 3")
    cells = editor.js(f"() => weft.view.mediaCells.get({save})")
    node = editor.node(save)
    second = cells[1]
    editor.page.mouse.click(*editor.graph_to_client(node["pos"][0] + second["x"] + second["w"] / 2, node["pos"][1] + second["y"] + second["h"] / 2))
    editor.page.wait_for_selector(".viewer img")
    assert editor.page.locator(".viewer-counter").inner_text() == "2 / 3"
    editor.page.keyboard.press("ArrowRight")
    assert editor.page.locator(".viewer-counter").inner_text() == "3 / 3"
    editor.page.click(".viewer-next")
    assert editor.page.locator(".viewer-counter").inner_text() == "1 / 3"
    editor.page.wait_for_function("() => document.querySelector('.viewer img').naturalWidth === 24")
    editor.snapshot("viewer_batch")
    editor.page.keyboard.press("Escape")
    assert editor.page.locator(".viewer").count() == 0
