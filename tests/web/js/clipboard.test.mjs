import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copySelection, pasteClip } from '../../../web/js/model/clipboard.js';
import { newDoc } from './helpers.mjs';

test('copy/paste keeps inner links, drops outer ones unless asked, survives JSON', () => {
  const doc = newDoc();
  const a = doc.addNode('ImageInvert', [0, 0]);
  const b = doc.addNode('ImageInvert', [300, 0]);
  const c = doc.addNode('ImageInvert', [600, 0]);
  doc.connect(a.id, 0, b.id, 0);
  doc.connect(b.id, 0, c.id, 0);
  const clip = JSON.parse(JSON.stringify(copySelection(doc, [b.id, c.id])));
  const ids = pasteClip(doc, clip, [0, 500]);
  assert.equal(ids.length, 2);
  const [b2, c2] = ids.map((id) => doc.nodes.get(id));
  assert.equal(b2.inputs[0].link, null);
  assert.equal(doc.links.get(c2.inputs[0].link).origin_id, b2.id);
  assert.equal(b2.pos[1], 500 + 30, 'the top of the title bar lands on the paste point');
  const kept = pasteClip(doc, clip, [0, 900], { keepInputs: true });
  assert.equal(doc.links.get(doc.nodes.get(kept[0]).inputs[0].link).origin_id, a.id);
});

test('a pasted widget socket without its source becomes a widget again', () => {
  const doc = newDoc();
  const p = doc.addNode('PrimitiveInt', [0, 0]);
  const k = doc.addNode('KSampler', [300, 0]);
  doc.connectToWidget(p.id, 0, k.id, 'steps');
  const [k2] = pasteClip(doc, copySelection(doc, [k.id]), [0, 600]);
  assert.equal(doc.widgetInputSlot(doc.nodes.get(k2), 'steps'), -1);
});
