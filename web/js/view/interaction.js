// Pointer, wheel and keyboard input on the canvas: decides what a press means (from what lies under
// it) and hands the drag that follows to one gesture module. The gestures and commands do the work.

import { startPan } from './gestures/pan.js';
import { wheelZoom, startPinch } from './gestures/zoom.js';
import { startDragItems } from './gestures/drag-items.js';
import { startBoxSelect } from './gestures/box-select.js';
import { startConnect } from './gestures/connect.js';
import { startResizeNode, startResizeGroup } from './gestures/resize.js';
import { isTyping } from '../ui/dom.js';
import { Tooltip, tooltipFor } from '../ui/tooltip.js';

export class Interaction {
  #gesture = null;
  #pointers = new Map();
  #space = false;

  constructor(env) {
    this.env = env;
    this.lastGraphPoint = null;
    this.tooltip = new Tooltip(document.body);
    const { canvas } = env.view;
    canvas.addEventListener('pointerleave', () => this.tooltip.hide());
    canvas.addEventListener('pointerdown', (e) => this.#down(e));
    // The browser would focus the canvas after a press, taking focus from whatever the press just
    // opened (a list filter, an inline editor); key shortcuts listen on the window anyway.
    canvas.addEventListener('mousedown', (e) => e.preventDefault());
    canvas.addEventListener('pointermove', (e) => this.#move(e));
    canvas.addEventListener('pointerup', (e) => this.#up(e));
    canvas.addEventListener('pointercancel', (e) => this.#cancel(e));
    canvas.addEventListener('dblclick', (e) => this.#doubleClick(e));
    canvas.addEventListener('contextmenu', (e) => this.#contextMenu(e));
    canvas.parentElement.addEventListener('wheel', (e) => this.#wheel(e), { passive: false });
    window.addEventListener('keydown', (e) => this.#key(e, true));
    window.addEventListener('keyup', (e) => this.#key(e, false));
  }

  get busy() { return Boolean(this.#gesture); }

  #down(e) {
    this.tooltip.hide();
    const { env } = this;
    const { view } = env;
    this.#pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    try {
      env.view.canvas.setPointerCapture(e.pointerId);
    } catch {
      // A pointer the browser does not track (e.g. one made up by a script) is simply not captured.
    }
    if (e.pointerType === 'touch' && this.#pointers.size === 2) {
      this.#gesture?.cancel?.();
      this.#gesture = startPinch(env, this.#pointers);
      return;
    }
    if (this.#gesture && e.pointerType === 'touch') return;
    // A mouse has one pointer: a press while a gesture is open means its release got lost.
    this.#gesture?.cancel?.();
    this.#gesture = null;
    if (document.activeElement instanceof HTMLElement && isTyping(document.activeElement)) document.activeElement.blur();
    if (e.button === 1 || (e.button === 0 && this.#space)) {
      e.preventDefault();
      this.#gesture = startPan(env, e, { clearOnClick: false });
      return;
    }
    if (e.button !== 0) return;
    const [gx, gy] = view.graphPoint(e);
    const hit = view.hitAt(gx, gy);
    this.#gesture = this.#gestureFor(hit, e) ?? null;
    if (hit.nodeId != null && this.#gesture !== null) view.bringToFront([hit.nodeId]);
  }

  #selectNodeFor(e, nodeId) {
    const { selection } = this.env;
    if (e.shiftKey || e.ctrlKey || e.metaKey) {
      selection.toggle('nodes', nodeId);
      return selection.nodes.has(nodeId);
    }
    if (!selection.nodes.has(nodeId)) selection.set({ nodes: [nodeId] });
    return true;
  }

  #dragSelection(e) {
    const { selection } = this.env;
    return startDragItems(this.env, e, { nodes: [...selection.nodes], reroutes: [...selection.reroutes], groups: [...selection.groups] });
  }

  #gestureFor(hit, e) {
    const { env } = this;
    const { doc, selection, view } = env;
    switch (hit.kind) {
      case 'output':
        return startConnect(env, e, { kind: 'output', nodeId: hit.nodeId, slot: hit.slot });
      case 'input': {
        const link = doc.links.get(doc.nodes.get(hit.nodeId).inputs[hit.slot].link);
        if (!link) return startConnect(env, e, { kind: 'input', nodeId: hit.nodeId, slot: hit.slot });
        env.history.begin();
        doc.removeLink(link.id);
        return startConnect(env, e, { kind: 'output', nodeId: link.origin_id, slot: link.origin_slot }, { detached: true });
      }
      case 'widget': {
        if (!(e.shiftKey || e.ctrlKey) && !selection.nodes.has(hit.nodeId)) selection.set({ nodes: [hit.nodeId] });
        const node = doc.nodes.get(hit.nodeId);
        const def = doc.defOf(node);
        const wdef = def.widgets[hit.index];
        const kind = env.widgetKinds.get(wdef.kind) ?? env.widgetKinds.get('UNKNOWN');
        const w = { node, def: wdef, index: hit.index, value: node.widgets_values?.[hit.index], localX: hit.localX, localY: hit.localY,
          rect: view.layoutOf(node).widgets.find((r) => r.index === hit.index) };
        return kind.pointerDown?.(env, w, e) ?? null;
      }
      case 'collapse':
        env.history.run(() => doc.toggleCollapsed([hit.nodeId]));
        return null;
      case 'resize':
        return startResizeNode(env, e, hit.nodeId);
      case 'media': {
        this.#selectNodeFor(e, hit.nodeId);
        const drag = this.#dragSelection(e);
        let moved = false;
        return {
          move: (ev) => { moved = moved || Math.hypot(ev.clientX - e.clientX, ev.clientY - e.clientY) > 3; drag.move(ev); },
          end: (ev) => { drag.end(ev); if (!moved) env.openNodeImages(hit.nodeId, hit.index); },
          cancel: () => drag.cancel(),
        };
      }
      case 'title':
      case 'node':
        if (e.altKey) {
          this.#selectNodeFor(e, hit.nodeId);
          env.commands.run('duplicate-in-place');
          return this.#dragSelection(e);
        }
        return this.#selectNodeFor(e, hit.nodeId) ? this.#dragSelection(e) : null;
      case 'reroute': {
        if (e.shiftKey) {
          const link = doc.linksThrough(hit.rerouteId)[0];
          if (link) return startConnect(env, e, { kind: 'output', nodeId: link.origin_id, slot: link.origin_slot, rerouteId: hit.rerouteId });
        }
        if (!selection.reroutes.has(hit.rerouteId)) selection.set({ reroutes: [hit.rerouteId] });
        return this.#dragSelection(e);
      }
      case 'link':
        env.menus.link(hit, e.clientX, e.clientY);
        return null;
      case 'group-title':
        if (e.shiftKey || e.ctrlKey) selection.toggle('groups', hit.groupId);
        else if (!selection.groups.has(hit.groupId)) selection.set({ groups: [hit.groupId] });
        return this.#dragSelection(e);
      case 'group-resize':
        return startResizeGroup(env, e, hit.groupId);
      default:
        if (e.ctrlKey || e.shiftKey || e.metaKey) return startBoxSelect(env, e);
        return startPan(env, e);
    }
  }

  #move(e) {
    if (this.#pointers.has(e.pointerId)) this.#pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    const { view } = this.env;
    this.lastGraphPoint = view.graphPoint(e);
    if (this.#gesture) {
      this.#gesture.move(e);
      return;
    }
    const hit = view.hitAt(...this.lastGraphPoint);
    const key = `${hit.kind}:${hit.nodeId}:${hit.index}:${hit.slot}`;
    if (key !== this.hoverKey) {
      this.hoverKey = key;
      view.hover = hit;
      this.tooltip.schedule(tooltipFor(this.env.doc, hit), e.clientX, e.clientY);
      view.canvas.style.cursor = { output: 'crosshair', input: 'crosshair', resize: 'nwse-resize', 'group-resize': 'nwse-resize', widget: 'pointer', link: 'pointer', collapse: 'pointer', media: 'zoom-in', title: 'move', 'group-title': 'move', reroute: 'move' }[hit.kind] ?? '';
      view.requestDraw();
    }
  }

  #up(e) {
    this.#pointers.delete(e.pointerId);
    const gesture = this.#gesture;
    if (!gesture) return;
    if (this.#pointers.size > 0 && e.pointerType === 'touch') return;
    this.#gesture = null;
    gesture.end(e);
  }

  #cancel(e) {
    this.#pointers.delete(e.pointerId);
    this.#gesture?.cancel?.();
    this.#gesture = null;
  }

  #doubleClick(e) {
    const { env } = this;
    const [gx, gy] = env.view.graphPoint(e);
    const hit = env.view.hitAt(gx, gy);
    if (hit.kind === 'node' && env.subgraphs.canOpen(env.doc.nodes.get(hit.nodeId))) env.subgraphs.open(hit.nodeId);
    else if (hit.kind === 'title') env.editNodeTitle(hit.nodeId);
    else if (hit.kind === 'group-title') env.editGroupTitle(hit.groupId);
    else if (hit.kind === 'none') {
      env.ui.openSearch({ clientX: e.clientX, clientY: e.clientY, graphPos: [gx, gy], onPick: (def) => env.addNodeAt(def.name, [gx, gy]) });
    }
  }

  #contextMenu(e) {
    e.preventDefault();
    const { env } = this;
    const [gx, gy] = env.view.graphPoint(e);
    const hit = env.view.hitAt(gx, gy);
    env.menus.forHit(hit, e.clientX, e.clientY, [gx, gy]);
  }

  #wheel(e) {
    this.tooltip.hide();
    const target = e.target;
    if (target instanceof HTMLTextAreaElement && !e.ctrlKey && target.scrollHeight > target.clientHeight && document.activeElement === target) return;
    if (target.closest?.('.menu, .search, .panel')) return;
    e.preventDefault();
    wheelZoom(this.env, e);
  }

  #key(e, down) {
    if (e.key === ' ' && !isTyping(e.target)) {
      this.#space = down;
      if (down) e.preventDefault();
      return;
    }
    if (!down || isTyping(e.target) || this.env.ui.modalOpen()) return;
    if (e.key === 'Escape' && this.#gesture) {
      this.#gesture.cancel?.();
      this.#gesture = null;
      return;
    }
    if (this.env.commands.handleKey(e)) e.preventDefault();
  }
}
