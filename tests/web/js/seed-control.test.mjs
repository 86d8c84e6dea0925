import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextControlledValue, applyControlsAfterQueue, RANDOM_LIMIT } from '../../../web/js/model/seed-control.js';
import { newDoc } from './helpers.mjs';

const seed = { kind: 'INT', min: 0, max: 0xffffffffffffffff, step: 1 };

test('numbers: fixed, increment, decrement within limits, randomize in range', () => {
  assert.equal(nextControlledValue(seed, 5, 'fixed'), 5);
  assert.equal(nextControlledValue(seed, 5, 'increment'), 6);
  assert.equal(nextControlledValue(seed, 0, 'decrement'), 0);
  assert.equal(nextControlledValue({ kind: 'INT', min: 0, max: 10, step: 1 }, 10, 'increment'), 10);
  assert.equal(nextControlledValue(seed, 5, 'randomize', { random: () => 0.5 }), RANDOM_LIMIT / 2);
  const width = { kind: 'INT', min: 16, max: 64, step: 8 };
  assert.equal(nextControlledValue(width, 16, 'randomize', { random: () => 0.99 }), 64);
});

test('combos: step through choices, honour a filter', () => {
  const combo = { kind: 'COMBO', values: ['a', 'b', 'c'] };
  assert.equal(nextControlledValue(combo, 'a', 'increment'), 'b');
  assert.equal(nextControlledValue(combo, 'c', 'increment'), 'c');
  assert.equal(nextControlledValue(combo, 'b', 'decrement'), 'a');
  assert.equal(nextControlledValue(combo, 'a', 'randomize', { random: () => 0.99 }), 'c');
  assert.equal(nextControlledValue({ kind: 'COMBO', values: ['x1', 'y', 'x2'] }, 'x1', 'increment', { filter: 'x' }), 'x2');
});

test('after a queue every seed moves by its own mode; linked seeds are left alone', () => {
  const doc = newDoc();
  const k1 = doc.addNode('KSampler', [0, 0]);
  const k2 = doc.addNode('KSampler', [0, 400]);
  doc.setWidgetValue(k1.id, 1, 'increment');
  doc.setWidgetValue(k2.id, 1, 'fixed');
  applyControlsAfterQueue(doc);
  assert.equal(k1.widgets_values[0], 1);
  assert.equal(k2.widgets_values[0], 0);
  const prim = doc.addNode('PrimitiveNode', [-300, 0]);
  doc.connectToWidget(prim.id, 0, k1.id, 'seed');
  doc.setWidgetValue(prim.id, 1, 'increment');
  applyControlsAfterQueue(doc);
  assert.equal(prim.widgets_values[0], 2);
  assert.equal(k1.widgets_values[0], 2, 'the primitive moved and mirrored; the linked seed did not move twice');
});
