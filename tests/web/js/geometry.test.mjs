import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newDoc } from './helpers.mjs';
import { nodeLayout, WIDGET_GAP } from '../../../web/js/model/geometry.js';

const inside = (box, node) => box.x >= 0 && box.y >= 0 && box.x + box.w <= node.size[0] && box.y + box.h <= node.size[1];

test("a note's text box fills its body, and never leaves it (ComfyUI's 225×88 MarkdownNote)", () => {
  const doc = newDoc();
  for (const [type, size] of [['MarkdownNote', [225, 88]], ['Note', [451, 424]]]) {
    const note = doc.addNode(type, [0, 0], { size });
    const layout = nodeLayout(note, doc.defOf(note));
    const { box } = layout.widgets[0];
    assert.ok(inside(box, note), `${type} ${JSON.stringify(box)}`);
    assert.equal(box.y + box.h, size[1] - WIDGET_GAP, 'it reaches the bottom of the body');
    assert.equal(layout.contentBottom, nodeLayout({ ...note, size: [size[0], 0] }, doc.defOf(note)).contentBottom,
      'the minimum size does not follow the current one');
  }
});

test('a text box keeps its row in a roomy node, is cut in a small one, and goes when no line fits', () => {
  const doc = newDoc();
  const roomy = doc.addNode('CLIPTextEncode', [0, 0]);
  const [row] = nodeLayout(roomy, doc.defOf(roomy)).widgets;
  assert.deepEqual(row.box, { x: row.x, y: row.y, w: row.w, h: row.h });
  const small = doc.addNode('CLIPTextEncode', [0, 0], { size: [200, 70] });
  const cut = nodeLayout(small, doc.defOf(small)).widgets[0].box;
  assert.ok(inside(cut, small) && cut.h < row.h, JSON.stringify(cut));
  const tiny = doc.addNode('CLIPTextEncode', [0, 0], { size: [200, 40] });
  assert.equal(nodeLayout(tiny, doc.defOf(tiny)).widgets[0].box, null);
});
