import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { definitionToWorkflow, workflowToDefinition } from '../../../web/js/model/subgraph-io.js';
import { readWorkflow } from '../../../web/js/model/workflow-format.js';
import { fixture, newDoc } from './helpers.mjs';

const root = JSON.parse(readFileSync(fixture('workflow_schema1_subgraph.json'), 'utf8'));
const definition = root.definitions.subgraphs[0];

test('a definition opens as a graph with its input and output panels wired', () => {
  const doc = newDoc();
  doc.load(readWorkflow(definitionToWorkflow(definition, root.definitions)).data);
  assert.deepEqual([...doc.nodes.keys()].sort((a, b) => a - b), [-20, -10, 1, 2]);
  assert.equal(doc.links.size, 3);
  const input = doc.nodes.get(-10);
  assert.deepEqual(doc.defOf(input).outputs.map((o) => o.type), ['IMAGE']);
  assert.equal(doc.canConnect(-10, 0, 2, 0).ok, true);
  doc.removeNodes([-10, 1]);
  assert.ok(doc.nodes.has(-10), 'the panels cannot be deleted');
  assert.ok(!doc.nodes.has(1));
});

test('edits inside go back into the definition: nodes, links, panel links and positions', () => {
  const doc = newDoc();
  doc.load(readWorkflow(definitionToWorkflow(definition, root.definitions)).data);
  const blur = doc.addNode('ImageInvert', [150, 200]);
  doc.connect(2, 0, blur.id, 0);
  doc.connect(blur.id, 0, -20, 0);
  doc.moveNodes([-10], 10, 0);
  const updated = workflowToDefinition(doc.toData(), definition);
  assert.equal(updated.nodes.length, 3);
  assert.deepEqual(updated.outputs[0].linkIds, [doc.nodes.get(-20).inputs[0].link]);
  assert.deepEqual(updated.inputs[0].linkIds, [1]);
  assert.equal(updated.inputNode.bounding[0], definition.inputNode.bounding[0] + 10);
  assert.deepEqual(updated.inputNode.bounding.slice(1), definition.inputNode.bounding.slice(1));
  assert.equal(updated.name, 'Invert twice');
  assert.ok(updated.links.some((l) => l.target_id === -20 && l.origin_id === blur.id));
  // The round trip of an untouched definition changes nothing that matters.
  const again = newDoc();
  again.load(readWorkflow(definitionToWorkflow(definition, root.definitions)).data);
  const same = workflowToDefinition(again.toData(), definition);
  assert.deepEqual(same.links, definition.links);
  assert.deepEqual(same.inputs, definition.inputs);
  assert.deepEqual(same.outputs, definition.outputs);
});
