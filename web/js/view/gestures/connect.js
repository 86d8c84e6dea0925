// Connect sockets: drag from an output (or a reroute point) to an input, or from an input to an
// output. Compatible sockets light up; over an incompatible one the link turns red with the reason,
// and dropping there is refused with a message. Dropping on a node picks its first compatible
// socket; dropping a fresh link on empty canvas opens the search filtered to compatible nodes.

function firstCompatible(doc, from, node) {
  if (from.kind === 'output') {
    const order = [...node.inputs.keys()].sort((a, b) => (node.inputs[a].link == null ? 0 : 1) - (node.inputs[b].link == null ? 0 : 1));
    const slot = order.find((s) => !node.inputs[s].widget && doc.canConnect(from.nodeId, from.slot, node.id, s).ok);
    return slot == null ? null : { kind: 'input', nodeId: node.id, slot };
  }
  const slot = node.outputs.findIndex((_, s) => doc.canConnect(node.id, s, from.nodeId, from.slot).ok);
  return slot < 0 ? null : { kind: 'output', nodeId: node.id, slot };
}

/** What dropping here would do: {action: connect|widget|refuse|search|none, ...}. */
function resolveDrop(env, from, hit) {
  const { doc } = env;
  if (from.kind === 'output') {
    if (hit.kind === 'input') {
      const verdict = doc.canConnect(from.nodeId, from.slot, hit.nodeId, hit.slot);
      return verdict.ok ? { action: 'connect', target: hit, verdict } : { action: 'refuse', verdict };
    }
    if (hit.kind === 'widget') {
      const name = doc.defOf(doc.nodes.get(hit.nodeId)).widgets[hit.index].name;
      const verdict = doc.canConnectToWidget(from.nodeId, from.slot, hit.nodeId, name);
      return verdict.ok ? { action: 'widget', nodeId: hit.nodeId, widgetName: name, verdict } : { action: 'refuse', verdict };
    }
  } else if (hit.kind === 'output') {
    const verdict = doc.canConnect(hit.nodeId, hit.slot, from.nodeId, from.slot);
    return verdict.ok ? { action: 'connect', target: hit, verdict } : { action: 'refuse', verdict };
  }
  if (['node', 'title', 'collapse', 'media', 'resize', 'widget', 'input', 'output'].includes(hit.kind) && hit.nodeId !== from.nodeId) {
    const node = doc.nodes.get(hit.nodeId);
    const target = firstCompatible(doc, from, node);
    if (target) return { action: 'connect', target, verdict: { ok: true } };
    const type = from.kind === 'output' ? doc.outputType(doc.nodes.get(from.nodeId), from.slot) : doc.inputType(doc.nodes.get(from.nodeId), from.slot);
    return { action: 'refuse', verdict: { ok: false, reason: `${doc.titleOf(node)} has no ${from.kind === 'output' ? 'input' : 'output'} for ${type}` } };
  }
  if (hit.kind === 'none' || hit.kind === 'group-title' || hit.kind === 'link') return { action: 'search' };
  return { action: 'none' };
}

function applyDrop(env, from, drop) {
  const { doc } = env;
  const options = { parentId: from.rerouteId };
  if (drop.action === 'widget') doc.connectToWidget(from.nodeId, from.slot, drop.nodeId, drop.widgetName, options);
  else if (from.kind === 'output') doc.connect(from.nodeId, from.slot, drop.target.nodeId, drop.target.slot, options);
  else doc.connect(drop.target.nodeId, drop.target.slot, from.nodeId, from.slot);
}

/**
 * @param {object} from  {kind: 'output'|'input', nodeId, slot, rerouteId?}
 * @param {{detached?: boolean}} options  detached: the link was pulled off an input (the step began already)
 */
export function startConnect(env, event, from, { detached = false } = {}) {
  const { doc, view, history, ui } = env;
  const fromNode = doc.nodes.get(from.nodeId);
  const type = from.kind === 'output' ? doc.outputType(fromNode, from.slot) : doc.inputType(fromNode, from.slot);
  if (!detached) history.begin();
  view.pending = { from, type, pointer: view.graphPoint(event), verdict: null };
  view.requestDraw();
  let moved = false;
  return {
    move(e) {
      moved = moved || Math.hypot(e.clientX - event.clientX, e.clientY - event.clientY) > 3;
      const p = view.graphPoint(e);
      const drop = resolveDrop(env, from, view.hitAt(p[0], p[1]));
      view.pending = { ...view.pending, pointer: p, verdict: drop.verdict ?? null };
      view.requestDraw();
    },
    end(e) {
      view.pending = null;
      view.requestDraw();
      const p = view.graphPoint(e);
      const drop = moved || detached ? resolveDrop(env, from, view.hitAt(p[0], p[1])) : { action: 'none' };
      try {
        if (drop.action === 'connect' || drop.action === 'widget') applyDrop(env, from, drop);
        else if (drop.action === 'refuse') ui.toast(`Link refused: ${drop.verdict.reason}`, 'error');
      } catch (error) {
        ui.toast(`Link refused: ${error.message}`, 'error');
      } finally {
        history.commit();
      }
      if (drop.action === 'search' && !detached) {
        ui.openSearch({
          clientX: e.clientX, clientY: e.clientY, graphPos: p,
          filter: from.kind === 'output' ? { input: type } : { output: type },
          onPick: (def) => env.addNodeAndConnect(def.name, p, from),
        });
      }
    },
    cancel() {
      view.pending = null;
      history.commit();
      view.requestDraw();
    },
  };
}
