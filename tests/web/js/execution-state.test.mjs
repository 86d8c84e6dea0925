import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExecutionState } from '../../../web/js/model/execution-state.js';

test('a run: executing node, progress, outputs, success', () => {
  const s = new ExecutionState();
  s.handle('execution_start', { prompt_id: 'p' });
  s.setTotalNodes(4);
  s.handle('execution_cached', { nodes: ['1'], prompt_id: 'p' });
  s.handle('executing', { node: '5', display_node: '5', prompt_id: 'p' });
  assert.equal(s.nodeStatus(5), 'running');
  s.handle('progress', { node: '5', value: 1, max: 2, prompt_id: 'p' });
  assert.equal(s.overallProgress(), 1.5 / 4);
  s.setPreview(new Blob(['x']));
  assert.ok(s.previewFor(5));
  s.handle('executing', { node: '7', prompt_id: 'p' });
  s.handle('executed', { node: '7', output: { images: [{ filename: 'a.png', subfolder: '', type: 'output' }] }, prompt_id: 'p' });
  s.handle('executing', { node: null, prompt_id: 'p' });
  s.handle('execution_success', { prompt_id: 'p' });
  assert.deepEqual(s.lastResult, { promptId: 'p', result: 'success' });
  assert.equal(s.outputFor(7).images[0].filename, 'a.png');
  assert.equal(s.executingNode, null);
  assert.equal(s.overallProgress(), null);
});

test('validation errors land on nodes and inputs; subgraph paths on the top-level node', () => {
  const s = new ExecutionState();
  s.setPromptErrors({
    error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation' },
    node_errors: {
      3: { errors: [{ type: 'required_input_missing', message: 'Required input is missing', extra_info: { input_name: 'model' } }], class_type: 'KSampler' },
      '9:2': { errors: [{ type: 'value_not_in_list', message: 'Value not in list', extra_info: { input_name: 'x' } }], class_type: 'Y' },
    },
  });
  assert.equal(s.nodeStatus(3), 'error');
  assert.deepEqual([...s.inputErrors(3)], [['model', ['Required input is missing']]]);
  assert.equal(s.nodeStatus(9), 'error');
  s.clearErrors();
  assert.equal(s.nodeStatus(3), null);
});

test('an execution error marks its node', () => {
  const s = new ExecutionState();
  s.handle('execution_start', { prompt_id: 'p' });
  s.handle('execution_error', { prompt_id: 'p', node_id: '4', node_type: 'KSampler', exception_message: 'boom' });
  assert.equal(s.nodeStatus(4), 'error');
  assert.equal(s.lastResult.result, 'error');
});

test('outputs are replaced when another workflow opens, by a past job\'s when it has some', () => {
  const s = new ExecutionState();
  s.handle('executed', { node: '7', output: { images: [{ filename: 'a.png' }] } });
  s.setOutputs({});
  assert.equal(s.outputs.size, 0);
  s.setOutputs({ '3:1': { images: [{ filename: 'b.png' }] } });
  assert.equal(s.outputFor(3).images[0].filename, 'b.png', 'an instance shows what its inner nodes made');
});

test('a scope shows the level inside a subgraph instance', () => {
  const s = new ExecutionState();
  s.handle('execution_start', { prompt_id: 'p' });
  s.handle('executing', { node: '2:1', display_node: '2:1', prompt_id: 'p' });
  s.handle('progress', { node: '2:1', value: 2, max: 4, prompt_id: 'p' });
  assert.equal(s.nodeStatus(2), 'running');
  assert.equal(s.nodeStatus(1), null);
  assert.deepEqual(s.progressFor(2), { value: 2, max: 4 });
  s.setScope('2');
  assert.equal(s.nodeStatus(1), 'running');
  assert.equal(s.nodeStatus(2), null);
  assert.equal(s.viewIdOf('2:1'), '1');
  assert.equal(s.viewIdOf('7'), null);
  s.setPromptErrors({ node_errors: { '2:1': { errors: [{ message: 'bad', extra_info: { input_name: 'image' } }] } } });
  assert.deepEqual([...s.inputErrors(1)], [['image', ['bad']]]);
  s.setScope('');
  s.handle('execution_success', { prompt_id: 'p' });
  assert.equal(s.nodeStatus(2), 'error', 'an instance shows the errors of its inner nodes');
  assert.deepEqual([...s.inputErrors(2)], []);
});
