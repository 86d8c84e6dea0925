import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzyScore, searchNodes } from '../../../web/js/model/fuzzy.js';
import { NodeCatalog } from '../../../web/js/model/catalog.js';
import { objectInfo } from './helpers.mjs';

const defs = new NodeCatalog(objectInfo).all();

test('in-order characters match, others do not', () => {
  assert.ok(fuzzyScore('ksa', 'KSampler') > 0);
  assert.equal(fuzzyScore('xyz', 'KSampler'), -1);
  assert.ok(fuzzyScore('ks', 'KSampler') > fuzzyScore('ks', 'Checkpoint Loader Simple'));
});

test('search ranks by display name, type name and category', () => {
  assert.equal(searchNodes(defs, 'ksampler')[0].name, 'KSampler');
  assert.equal(searchNodes(defs, 'load checkpoint')[0].name, 'CheckpointLoaderSimple');
  assert.equal(searchNodes(defs, 'vae dec')[0].name, 'VAEDecode');
  assert.ok(searchNodes(defs, 'conditioning').some((d) => d.name === 'CLIPTextEncode'), 'category matches');
  const withLatentInput = searchNodes(defs, '', (d) => d.sockets.some((s) => s.type === 'LATENT'));
  assert.deepEqual(new Set(withLatentInput.map((d) => d.name)), new Set(['KSampler', 'VAEDecode', 'LatentUpscale']));
});

test('a whole phrase beats scattered words: "clip text encode" finds CLIPTextEncode before the SDXL one', () => {
  const sdxl = { name: 'CLIPTextEncodeSDXL', displayName: 'CLIPTextEncodeSDXL', category: 'advanced/conditioning', sockets: [], widgets: [], outputs: [] };
  const ranked = searchNodes([sdxl, ...defs], 'clip text encode').map((d) => d.name);
  assert.equal(ranked[0], 'CLIPTextEncode');
  assert.equal(searchNodes([sdxl, ...defs], 'cliptextencode')[0].name, 'CLIPTextEncode');
  assert.equal(searchNodes([sdxl, ...defs], 'sdxl')[0].name, 'CLIPTextEncodeSDXL');
});

test('with nothing typed, everyday nodes come before experimental, testing and deprecated ones', () => {
  const node = (name, extra) => ({ name, displayName: name, category: 'image', sockets: [], widgets: [], outputs: [],
    deprecated: false, experimental: false, ...extra });
  const ranked = searchNodes([node('A old', { deprecated: true }), node('B new', { experimental: true }),
    node('C test', { category: '_for_testing' }), node('D plain'), node('E plain')], '').map((d) => d.name);
  assert.deepEqual(ranked, ['D plain', 'E plain', 'B new', 'C test', 'A old']);
});
