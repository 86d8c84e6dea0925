import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readWorkflow, writeWorkflow, isApiPrompt, WorkflowFormatError } from '../../../web/js/model/workflow-format.js';
import { fixture, newDoc } from './helpers.mjs';

const load = (name) => JSON.parse(readFileSync(fixture(name), 'utf8'));

test('schema 0.4 from ComfyUI: links, groups, native reroutes, view state', () => {
  const { data, ds, schema } = readWorkflow(load('comfyui_workflow_0_4.json'));
  assert.equal(schema, '0.4');
  assert.deepEqual(ds, { scale: 0.6, offset: [40, 120] });
  assert.equal(data.nodes.length, 11);
  assert.equal(data.links.length, 12);
  assert.deepEqual(data.links.find((l) => l.id === 8), { id: 8, origin_id: 5, origin_slot: 0, target_id: 6, target_slot: 0, type: 'LATENT', parentId: 1 });
  assert.deepEqual(data.reroutes, [{ id: 1, pos: [1250, 330] }]);
  assert.deepEqual(data.groups.map((g) => [g.id, g.title]), [[1, 'Prompts'], [2, 'Output']]);
  assert.deepEqual(data.state, { lastNodeId: 13, lastLinkId: 12, lastGroupId: 2, lastRerouteId: 1 });
  assert.equal(data.nodes.find((n) => n.id === 8).mode, 2);
  assert.equal('ds' in data.extra, false);
});

test('0.4 round trip keeps nodes, links, groups and reroutes; the document reads it', () => {
  const original = load('comfyui_workflow_0_4.json');
  const { data, ds } = readWorkflow(original);
  const doc = newDoc();
  doc.load(data);
  const written = writeWorkflow(doc.toData(), { ds });
  assert.equal(written.version, 0.4);
  assert.deepEqual(written.links, original.links);
  assert.deepEqual(written.extra.reroutes, original.extra.reroutes);
  assert.deepEqual(written.extra.linkExtensions, original.extra.linkExtensions);
  assert.deepEqual(written.extra.ds, original.extra.ds);
  assert.equal(written.last_node_id, 13);
  for (const node of original.nodes) {
    const out = written.nodes.find((n) => n.id === node.id);
    assert.deepEqual(out.widgets_values, node.widgets_values ?? []);
    assert.deepEqual(out.inputs, node.inputs);
    assert.deepEqual(out.pos, node.pos);
    assert.equal(out.mode, node.mode);
    assert.equal(out.title, node.title);
  }
  const again = readWorkflow(written);
  assert.deepEqual(again.data.links, data.links);
  // The document understands what it read: the reroute node carries a VAE, the primitive an INT seed.
  assert.equal(doc.outputType(doc.nodes.get(10), 0), 'VAE');
  assert.deepEqual(doc.defOf(doc.nodes.get(12)).widgets.map((w) => w.name), ['seed', 'control_after_generate']);
  assert.equal(doc.defOf(doc.nodes.get(13)).widgets[0].multiline, true);
});

test('schema 1 with a subgraph definition: object links, top-level reroutes, state', () => {
  const { data, schema } = readWorkflow(load('workflow_schema1_subgraph.json'));
  assert.equal(schema, '1');
  assert.equal(data.links[1].parentId, 1);
  assert.deepEqual(data.state, { lastNodeId: 3, lastLinkId: 2, lastGroupId: 1, lastRerouteId: 1 });
  assert.equal(data.definitions.subgraphs[0].name, 'Invert twice');
  const doc = newDoc();
  doc.load(data);
  const instance = doc.nodes.get(2);
  const def = doc.defOf(instance);
  assert.equal(def.displayName, 'Invert twice');
  assert.deepEqual(def.outputs.map((o) => o.type), ['IMAGE']);
  const written = writeWorkflow(doc.toData());
  assert.equal(written.version, 0.4);
  assert.deepEqual(written.links, [[1, 1, 0, 2, 0, 'IMAGE'], [2, 2, 0, 3, 0, 'IMAGE']]);
  assert.equal(written.definitions.subgraphs[0].id, instance.type);
  assert.deepEqual(written.extra.reroutes, [{ id: 1, pos: [660, 120], linkIds: [2] }]);
});

test('broken links are dropped and slots repaired; API prompts are told apart', () => {
  const { data } = readWorkflow({
    nodes: [{ id: 1, type: 'ImageInvert', pos: [0, 0], inputs: [{ name: 'image', type: 'IMAGE', link: 9 }], outputs: [{ name: 'IMAGE', type: 'IMAGE', links: [3] }] }],
    links: [[3, 1, 0, 7, 0, 'IMAGE']],
  });
  assert.deepEqual(data.links, []);
  assert.equal(data.nodes[0].inputs[0].link, null);
  assert.deepEqual(data.nodes[0].outputs[0].links, []);
  assert.equal(isApiPrompt({ 3: { class_type: 'KSampler', inputs: {} } }), true);
  assert.throws(() => readWorkflow({ 3: { class_type: 'KSampler', inputs: {} } }), WorkflowFormatError);
  assert.throws(() => readWorkflow({ foo: 1 }), /no "nodes" list/);
});

test('unknown node types survive a round trip untouched', () => {
  const raw = { id: 5, type: 'SomePackNode', pos: [1, 2], size: [100, 50], inputs: [], outputs: [], widgets_values: { a: 1 }, properties: { x: 1 }, shape: 2 };
  const { data } = readWorkflow({ nodes: [raw], links: [] });
  const doc = newDoc();
  doc.load(data);
  assert.equal(doc.defOf(doc.nodes.get(5)).missing, true);
  const out = writeWorkflow(doc.toData()).nodes[0];
  assert.deepEqual(out.widgets_values, { a: 1 });
  assert.equal(out.shape, 2);
});

test('a link table keyed by id is read like a list', () => {
  const nodes = [
    { id: 1, type: 'ImageInvert', pos: [0, 0], inputs: [{ name: 'image', type: 'IMAGE', link: null }], outputs: [{ name: 'IMAGE', type: 'IMAGE', links: [4] }] },
    { id: 2, type: 'ImageInvert', pos: [300, 0], inputs: [{ name: 'image', type: 'IMAGE', link: 4 }], outputs: [{ name: 'IMAGE', type: 'IMAGE', links: [] }] },
  ];
  const { data } = readWorkflow({ version: 1, state: {}, nodes, links: { 4: { id: 4, origin_id: 1, origin_slot: 0, target_id: 2, target_slot: 0, type: 'IMAGE' } } });
  assert.deepEqual(data.links.map((l) => l.id), [4]);
});
