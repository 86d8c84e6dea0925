// Typing a value in place: an <input> over the widget (or title) being edited. Enter or leaving
// the field commits, Escape cancels.

import { h } from './dom.js';

export function editInline(root, { rect, value, commit, numeric = false, placeholder = '', fontSize = 13 }) {
  root.querySelector('.inline-editor')?.remove();
  const input = h('input', {
    class: 'inline-editor', type: 'text', value, placeholder, inputmode: numeric ? 'decimal' : null,
    style: { left: `${rect.x}px`, top: `${rect.y}px`, width: `${Math.max(rect.w, 80)}px`, height: `${Math.max(rect.h, 22)}px`, fontSize: `${fontSize}px` },
  });
  let done = false;
  const finish = (accept) => {
    if (done) return;
    done = true;
    const text = input.value;
    input.remove();
    if (accept) commit(text);
  };
  input.addEventListener('keydown', (e) => {
    e.stopPropagation();
    if (e.key === 'Enter') finish(true);
    else if (e.key === 'Escape') finish(false);
  });
  input.addEventListener('blur', () => finish(true));
  root.append(input);
  input.focus();
  input.select();
  return input;
}
