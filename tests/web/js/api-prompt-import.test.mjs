import { test } from 'node:test';
import assert from 'node:assert/strict';
import { importApiPrompt } from '../../../web/js/model/api-prompt-import.js';
import { newDoc } from './helpers.mjs';

test('an API prompt becomes a wired graph with its widget values, in columns by depth', () => {
  const doc = newDoc();
  const prompt = {
    4: { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'tiny-sd1.safetensors' } },
    5: { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 2 } },
    6: { class_type: 'CLIPTextEncode', inputs: { text: 'a fox', clip: ['4', 1] }, _meta: { title: 'Prompt' } },
    3: { class_type: 'KSampler', inputs: { seed: 7, steps: 3, cfg: 5, sampler_name: 'euler', scheduler: 'karras', denoise: 1,
      model: ['4', 0], positive: ['6', 0], negative: ['6', 0], latent_image: ['5', 0] } },
    9: { class_type: 'NoSuchNode', inputs: { x: ['3', 0] } },
  };
  const { added, skipped, warnings } = importApiPrompt(doc, prompt);
  assert.equal(added.length, 4);
  assert.deepEqual(skipped, ['NoSuchNode']);
  assert.deepEqual(warnings, []);
  const byType = (t) => [...doc.nodes.values()].find((n) => n.type === t);
  const sampler = byType('KSampler');
  assert.deepEqual(sampler.widgets_values, [7, 'randomize', 3, 5, 'euler', 'karras', 1]);
  assert.equal(sampler.inputs.filter((i) => i.link != null).length, 4);
  assert.equal(doc.titleOf(byType('CLIPTextEncode')), 'Prompt');
  assert.ok(sampler.pos[0] > byType('CLIPTextEncode').pos[0]);
  assert.ok(byType('CLIPTextEncode').pos[0] > byType('CheckpointLoaderSimple').pos[0]);
});

test('a link into a widget input drives that widget', () => {
  const doc = newDoc();
  importApiPrompt(doc, {
    1: { class_type: 'PrimitiveInt', inputs: { value: 12 } },
    2: { class_type: 'EmptyLatentImage', inputs: { width: ['1', 0], height: 64, batch_size: 1 } },
  });
  const latent = [...doc.nodes.values()].find((n) => n.type === 'EmptyLatentImage');
  assert.equal(doc.isWidgetLinked(latent, 'width'), true);
});
