import { test } from 'node:test';
import assert from 'node:assert/strict';
import { History } from '../../../web/js/model/history.js';
import { newDoc } from './helpers.mjs';

test('one step per action: undo and redo an add and a link', () => {
  const doc = newDoc();
  const history = new History(doc);
  const [a, b] = history.run(() => [doc.addNode('ImageInvert', [0, 0]), doc.addNode('ImageInvert', [300, 0])]);
  history.run(() => doc.connect(a.id, 0, b.id, 0));
  assert.equal(doc.links.size, 1);
  assert.ok(history.undo());
  assert.equal(doc.links.size, 0);
  assert.equal(doc.nodes.size, 2);
  assert.ok(history.undo());
  assert.equal(doc.nodes.size, 0);
  assert.equal(history.canUndo, false);
  assert.ok(history.redo());
  assert.ok(history.redo());
  assert.equal(doc.links.size, 1);
  assert.equal(doc.nodes.get(b.id).inputs[0].link, [...doc.links.keys()][0]);
});

test('nested steps fold into one; empty steps leave nothing; a new action clears redo', () => {
  const doc = newDoc();
  const history = new History(doc);
  history.begin();
  history.run(() => doc.addNode('ImageInvert', [0, 0]));
  history.run(() => doc.addNode('ImageInvert', [0, 0]));
  history.commit();
  history.run(() => {});
  history.undo();
  assert.equal(doc.nodes.size, 0);
  assert.equal(history.canUndo, false);
  assert.equal(history.canRedo, true);
  history.run(() => doc.addNode('VAEDecode', [0, 0]));
  assert.equal(history.canRedo, false);
});

test('a step that throws still records what it did', () => {
  const doc = newDoc();
  const history = new History(doc);
  assert.throws(() => history.run(() => { doc.addNode('ImageInvert', [0, 0]); throw new Error('boom'); }));
  assert.equal(history.canUndo, true);
});

test('clear() also drops an unfinished step, so undo works again after opening a file', () => {
  const doc = newDoc();
  const history = new History(doc);
  history.begin();
  history.clear();
  history.run(() => doc.addNode('ImageInvert', [0, 0]));
  assert.equal(history.undo(), true);
});
