import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withTextReplacements, formatDate } from '../../../web/js/model/text-replacements.js';

const names = { SaveImage: ['filename_prefix'], EmptyLatentImage: ['width', 'height', 'batch_size'] };
const widgetNames = (node) => names[node.type] ?? [];

test('dates and node widgets are filled into filename_prefix only', () => {
  const date = new Date(2025, 0, 5, 7, 8, 9);
  assert.equal(formatDate('yyyy-MM-dd hh:mm:ss', date), '2025-01-05 07:08:09');
  const workflow = { nodes: [
    { id: 1, type: 'EmptyLatentImage', title: 'Size', widgets_values: [768, 512, 1] },
    { id: 2, type: 'SaveImage', widgets_values: ['%date:yyyy-MM-dd%/run_%Size.width%x%Empty Latent Image.height%_%nope.x%'] },
  ] };
  workflow.nodes[0].properties = { 'Node name for S&R': 'EmptyLatentImage' };
  const out = withTextReplacements(workflow, widgetNames, date);
  assert.equal(out.nodes[1].widgets_values[0], '2025-01-05/run_768x%Empty Latent Image.height%_%nope.x%');
  assert.equal(workflow.nodes[1].widgets_values[0].startsWith('%date'), true, 'the original is untouched');
  const bySr = withTextReplacements({ nodes: [workflow.nodes[0], { id: 3, type: 'SaveImage', widgets_values: ['%EmptyLatentImage.height%'] }] }, widgetNames, date);
  assert.equal(bySr.nodes[1].widgets_values[0], '512');
});
