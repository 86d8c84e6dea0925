// Hover help: after the pointer rests on a socket, a widget or a title, a short text from the
// node's schema (input/output tooltips, the node's description) appears beside it.

import { h } from './dom.js';

const DELAY_MS = 550;

export class Tooltip {
  #timer = 0;
  #el = null;

  constructor(root) {
    this.root = root;
  }

  /** Show `text` at (x, y) after the delay; a new call or hide() cancels the pending one. */
  schedule(text, x, y) {
    this.hide();
    if (!text) return;
    this.#timer = setTimeout(() => {
      this.#el = h('div', { class: 'tooltip', role: 'tooltip' }, text);
      this.root.append(this.#el);
      const r = this.#el.getBoundingClientRect();
      this.#el.style.left = `${Math.min(x + 14, window.innerWidth - r.width - 6)}px`;
      this.#el.style.top = `${Math.min(y + 18, window.innerHeight - r.height - 6)}px`;
    }, DELAY_MS);
  }

  hide() {
    clearTimeout(this.#timer);
    this.#el?.remove();
    this.#el = null;
  }
}

/** The help text for what a hit test found, from the node's definition. */
export function tooltipFor(doc, hit) {
  const node = hit.nodeId != null ? doc.nodes.get(hit.nodeId) : null;
  if (!node) return '';
  const def = doc.defOf(node);
  if (hit.kind === 'input') {
    const input = node.inputs[hit.slot];
    const spec = def.inputs.find((i) => i.name === (input.widget?.name ?? input.name));
    return [`${input.name}: ${doc.inputType(node, hit.slot)}`, spec?.options?.tooltip].filter(Boolean).join(' — ');
  }
  if (hit.kind === 'output') {
    const out = def.outputs[hit.slot];
    return [`${node.outputs[hit.slot].name}: ${doc.outputType(node, hit.slot)}`, out?.tooltip].filter(Boolean).join(' — ');
  }
  if (hit.kind === 'widget') {
    const widget = def.widgets[hit.index];
    const range = widget.kind === 'INT' || widget.kind === 'FLOAT' ? ` (${widget.min} … ${widget.max}, step ${widget.step})` : '';
    const help = widget.kind === 'CONTROL' ? 'what happens to the value after each queued run' : widget.options?.tooltip;
    return [`${widget.name}${range}`, help].filter(Boolean).join(' — ');
  }
  if (hit.kind === 'title') {
    return [def.missing ? def.description : def.description || '', def.name !== doc.titleOf(node) ? def.name : ''].filter(Boolean).join(' — ');
  }
  return '';
}
