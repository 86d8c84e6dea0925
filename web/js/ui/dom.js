// A tiny element builder: h('button', {class: 'x', onclick}, 'text', child…).

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value == null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Keep a floating element inside the window. */
export function placeWithin(el, x, y) {
  const { innerWidth: W, innerHeight: H } = window;
  const rect = el.getBoundingClientRect();
  el.style.left = `${Math.max(4, Math.min(x, W - rect.width - 4))}px`;
  el.style.top = `${Math.max(4, Math.min(y, H - rect.height - 4))}px`;
}

export function isTyping(target) {
  const el = target instanceof Element ? target : null;
  return Boolean(el && (el.closest('input, textarea, select, [contenteditable="true"]')));
}
