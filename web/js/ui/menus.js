// The right-click menus of the canvas, nodes, groups, links and reroute points.

import { categoryMenu } from './context-menu.js';
import { NODE_COLOR_PRESETS } from '../view/theme.js';
import { nodeBounds } from '../model/geometry.js';

export class CanvasMenus {
  constructor(app) {
    this.app = app;
  }

  #show(items, x, y, title) {
    this.app.ui.menus.show(items, x, y, { title });
  }

  #cmd(id, label) {
    const { commands } = this.app;
    return { label: label ?? commands.get(id).label, hint: commands.hint(id), run: () => commands.run(id) };
  }

  forHit(hit, x, y, graphPos) {
    const { selection } = this.app;
    if (hit.nodeId != null && ['node', 'title', 'collapse', 'widget', 'media', 'resize', 'input', 'output'].includes(hit.kind)) {
      if (!selection.nodes.has(hit.nodeId)) selection.set({ nodes: [hit.nodeId] });
      this.node(hit.nodeId, x, y);
    } else if (hit.kind === 'group-title' || hit.kind === 'group-resize') {
      this.group(hit.groupId, x, y);
    } else if (hit.kind === 'reroute') {
      this.#show([{ label: 'Delete reroute point', danger: true, run: () => this.app.history.run(() => this.app.doc.removeReroute(hit.rerouteId)) }], x, y, 'Reroute');
    } else if (hit.kind === 'link') {
      this.link(hit, x, y);
    } else {
      this.canvas(x, y, graphPos, hit.groupId);
    }
  }

  canvas(x, y, graphPos, groupId) {
    const { app } = this;
    const addAt = (def) => app.addNodeAt(def.name, graphPos);
    this.#show([
      { label: 'Add Node', submenu: () => categoryMenu(app.placeableDefs(), addAt) },
      { label: 'Search nodes…', hint: 'double-click', run: () => app.ui.openSearch({ clientX: x, clientY: y, graphPos, onPick: addAt }) },
      { label: 'Add Note', run: () => app.addNodeAt('Note', graphPos) },
      { label: 'Add Group', run: () => app.history.run(() => app.doc.addGroup([graphPos[0], graphPos[1], 400, 300], 'Group')) },
      app.selection.nodes.size ? this.#cmd('group', 'Group selected nodes') : null,
      groupId != null ? { label: 'Group…', submenu: () => this.#groupItems(groupId) } : null,
      null,
      this.#cmd('paste'),
      this.#cmd('select-all'),
      this.#cmd('fit'),
      null,
      this.#cmd('undo'),
      this.#cmd('redo'),
    ].filter((item, i, all) => item !== null || (i > 0 && all[i - 1] !== null)), x, y);
  }

  #convertItems(node) {
    const { app } = this;
    const { doc } = app;
    const def = doc.defOf(node);
    const toInput = def.widgets
      .filter((w) => w.socketType && !w.frontendOnly && !doc.isWidgetLinked(node, w.name))
      .map((w) => ({ label: w.name, run: () => app.convertWidgetToInput(node.id, w.name) }));
    const toWidget = node.inputs
      .filter((i) => i.widget && i.link != null && def.widgets.some((w) => w.name === i.widget.name))
      .map((i) => ({ label: i.widget.name, run: () => app.history.run(() => doc.removeLink(i.link)) }));
    return [
      toInput.length ? { label: 'Convert widget to input', submenu: toInput } : null,
      toWidget.length ? { label: 'Convert input to widget', submenu: toWidget } : null,
    ].filter(Boolean);
  }

  node(nodeId, x, y) {
    const { app } = this;
    const { doc } = app;
    const node = doc.nodes.get(nodeId);
    const ids = app.selection.nodes.has(nodeId) ? [...app.selection.nodes] : [nodeId];
    const colors = [
      { label: 'No colour', run: () => app.history.run(() => doc.setNodeColor(ids, null)) },
      ...Object.entries(NODE_COLOR_PRESETS).map(([name, [color, bg]]) => ({ label: name.replace('_', ' '), run: () => app.history.run(() => doc.setNodeColor(ids, color, bg)) })),
    ];
    const images = app.execution.outputFor(nodeId)?.images ?? [];
    this.#show([
      app.subgraphs.canOpen(node) ? { label: 'Open subgraph', hint: 'double-click', run: () => app.subgraphs.open(nodeId) } : null,
      { label: 'Rename…', run: () => app.editNodeTitle(nodeId) },
      { ...this.#cmd('collapse', node.flags?.collapsed ? 'Expand' : 'Collapse') },
      { ...this.#cmd('mute', node.mode === 2 ? 'Unmute' : 'Mute'), checked: node.mode === 2 },
      { ...this.#cmd('bypass', node.mode === 4 ? 'Remove bypass' : 'Bypass'), checked: node.mode === 4 },
      { label: 'Colour', submenu: colors },
      ...this.#convertItems(node),
      images.length ? { label: 'Open image', run: () => app.openNodeImages(nodeId, 0) } : null,
      null,
      this.#cmd('copy'),
      this.#cmd('duplicate'),
      { ...this.#cmd('delete', 'Delete'), danger: true },
    ], x, y, doc.titleOf(node));
  }

  #groupItems(groupId) {
    const { app } = this;
    const { doc } = app;
    return [
      { label: 'Edit title…', run: () => app.editGroupTitle(groupId) },
      { label: 'Colour', submenu: Object.entries(NODE_COLOR_PRESETS).map(([name, [, bg]]) => ({ label: name.replace('_', ' '), run: () => app.history.run(() => doc.updateGroup(groupId, { color: bg })) })) },
      { label: 'Fit to its nodes', run: () => app.history.run(() => this.#fitGroup(groupId)) },
      { label: 'Select its nodes', run: () => app.selection.set({ nodes: doc.nodesInGroup(groupId), groups: [groupId] }) },
      null,
      { label: 'Remove group', danger: true, run: () => app.history.run(() => doc.removeGroup(groupId)) },
      { label: 'Remove group and its nodes', danger: true, run: () => app.history.run(() => { doc.removeNodes(doc.nodesInGroup(groupId)); doc.removeGroup(groupId); }) },
    ];
  }

  #fitGroup(groupId) {
    const { doc } = this.app;
    const ids = doc.nodesInGroup(groupId);
    if (!ids.length) return;
    const boxes = ids.map((id) => nodeBounds(doc.nodes.get(id), doc.defOf(doc.nodes.get(id))));
    const g = doc.groups.get(groupId);
    const pad = 16;
    const top = (g.font_size ?? 24) + 12;
    const x = Math.min(...boxes.map((b) => b[0])) - pad;
    const y = Math.min(...boxes.map((b) => b[1])) - pad - top;
    doc.updateGroup(groupId, { bounding: [x, y, Math.max(...boxes.map((b) => b[0] + b[2])) + pad - x, Math.max(...boxes.map((b) => b[1] + b[3])) + pad - y] });
  }

  group(groupId, x, y) {
    this.#show(this.#groupItems(groupId), x, y, this.app.doc.groups.get(groupId).title);
  }

  link(hit, x, y) {
    const { app } = this;
    const link = app.doc.links.get(hit.linkId);
    this.#show([
      { label: 'Add reroute point here', run: () => app.history.run(() => app.doc.addReroute(hit.linkId, [hit.x, hit.y], hit.afterId)) },
      { label: 'Delete link', danger: true, run: () => app.history.run(() => app.doc.removeLink(hit.linkId)) },
    ], x, y, `${link.type} link`);
  }
}
