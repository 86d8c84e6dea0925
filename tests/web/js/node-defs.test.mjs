import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNodeDef } from '../../../web/js/model/node-defs.js';
import { objectInfo } from './helpers.mjs';

test('KSampler: sockets, widgets in schema order, seed gets control_after_generate', () => {
  const def = parseNodeDef('KSampler', objectInfo.KSampler);
  assert.deepEqual(def.sockets.map((s) => s.name), ['model', 'positive', 'negative', 'latent_image']);
  assert.deepEqual(def.widgets.map((w) => w.name),
    ['seed', 'control_after_generate', 'steps', 'cfg', 'sampler_name', 'scheduler', 'denoise']);
  const control = def.widgets[1];
  assert.equal(control.kind, 'CONTROL');
  assert.equal(control.default, 'randomize');
  assert.equal(control.controls, 0);
  const cfg = def.widgets.find((w) => w.name === 'cfg');
  assert.equal(cfg.step, 0.1);
  assert.equal(cfg.round, 0.01);
  assert.equal(cfg.default, 8);
  assert.deepEqual(def.outputs, [{ name: 'LATENT', type: 'LATENT', isList: false, tooltip: null }]);
});

test('LoadImage: image_upload adds the upload widget after the combo', () => {
  const def = parseNodeDef('LoadImage', objectInfo.LoadImage);
  assert.deepEqual(def.widgets.map((w) => [w.name, w.kind]), [['image', 'COMBO'], ['upload', 'IMAGEUPLOAD']]);
  assert.equal(def.widgets[1].default, 'image');
});

test('forceInput makes a socket, COMBO with options lists choices, missing limits fall back', () => {
  const def = parseNodeDef('X', {
    input: { required: { a: ['INT', { forceInput: true }], b: ['COMBO', { options: ['x', 'y'], default: 'y' }], c: ['INT', {}] } },
    output: ['INT'],
  });
  assert.deepEqual(def.sockets.map((s) => [s.name, s.type]), [['a', 'INT']]);
  assert.deepEqual(def.widgets[0].values, ['x', 'y']);
  assert.equal(def.widgets[0].default, 'y');
  assert.equal(def.widgets[1].min, 0);
  assert.equal(def.widgets[1].max, 2048);
  assert.equal(def.widgets[1].step, 1);
});

test('custom widget types from extensions become widgets', () => {
  const def = parseNodeDef('X', { input: { required: { colour: ['COLOR', { default: '#fff' }] } }, output: [] },
    new Map([['COLOR', { defaultValue: (o) => o.default }]]));
  assert.equal(def.widgets[0].kind, 'COLOR');
  assert.equal(def.widgets[0].default, '#fff');
  assert.equal(def.sockets.length, 0);
});

test('companion slots follow the server converter (graph/workflow/widgets.py)', () => {
  const def = parseNodeDef('X', {
    input: {
      required: {
        pic: [['a.png'], { image_upload: true }],
        mode: [['x', 'y'], { control_after_generate: true }],
        seed: ['INT', { control_after_generate: false }],
        noise_seed: ['INT', {}],
        strength: ['FLOAT', { control_after_generate: true }],
        note: ['MARKDOWN', {}],
      },
      optional: { extra: ['INT', {}] },
    },
    output: [],
  });
  assert.deepEqual(def.widgets.map((w) => w.name), [
    'pic', 'mode', 'control_after_generate', 'control_filter_list', 'seed', 'noise_seed', 'control_after_generate',
    'strength', 'control_after_generate', 'note', 'upload', 'extra',
  ]);
  assert.equal(def.widgets[10].controls, 0);
  assert.equal(def.widgets[9].multiline, true);
});

test('saved widget values are read as dicts, legacy forceInput saves and short lists', async () => {
  const { normalizeWidgetValues } = await import('../../../web/js/model/node-defs.js');
  const def = parseNodeDef('X', {
    input: { required: { a: ['INT', { default: 1 }], forced: ['INT', { forceInput: true }], seed: ['INT', { forceInput: true }], b: ['STRING', { default: 'x' }] } },
    output: [],
  });
  assert.deepEqual(def.widgets.map((w) => w.name), ['a', 'b']);
  assert.deepEqual(normalizeWidgetValues(def, { b: 'hi' }), [1, 'hi']);
  // pre-1.16: a, forced (dummy), seed (dummy) + its control, b
  assert.deepEqual(normalizeWidgetValues(def, [5, 0, 0, 'randomize', 'yo']), [5, 'yo']);
  assert.deepEqual(normalizeWidgetValues(def, [5]), [5, 'x']);
  assert.deepEqual(normalizeWidgetValues(def, [5, 'z']), [5, 'z']);
});
