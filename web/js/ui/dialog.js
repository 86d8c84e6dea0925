// Small modal questions: a name to save under, a yes/no.

import { h } from './dom.js';

export function askText(root, { title, value = '', placeholder = '', okLabel = 'OK' }) {
  return new Promise((resolve) => {
    const input = h('input', { type: 'text', value, placeholder, class: 'dialog-input' });
    const close = (result) => { overlay.remove(); resolve(result); };
    const ok = h('button', { class: 'primary', onclick: () => close(input.value.trim() || null) }, okLabel);
    const cancel = h('button', { onclick: () => close(null) }, 'Cancel');
    const overlay = h('div', { class: 'dialog-overlay' }, h('div', { class: 'dialog', role: 'dialog' }, h('h3', {}, title), input, h('div', { class: 'dialog-buttons' }, cancel, ok)));
    input.addEventListener('keydown', (e) => {
      e.stopPropagation();
      if (e.key === 'Enter') ok.click();
      if (e.key === 'Escape') cancel.click();
    });
    root.append(overlay);
    input.focus();
    input.select();
  });
}

export function confirmAction(root, { title, message = '', okLabel = 'OK' }) {
  return new Promise((resolve) => {
    const close = (result) => { overlay.remove(); resolve(result); };
    const ok = h('button', { class: 'primary', onclick: () => close(true) }, okLabel);
    const overlay = h('div', { class: 'dialog-overlay' }, h('div', { class: 'dialog', role: 'dialog' }, h('h3', {}, title), h('p', {}, message),
      h('div', { class: 'dialog-buttons' }, h('button', { onclick: () => close(false) }, 'Cancel'), ok)));
    root.append(overlay);
    ok.focus();
  });
}
