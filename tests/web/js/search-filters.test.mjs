import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseQuery, typeFilter } from '../../../web/js/model/search-filters.js';
import { searchNodes } from '../../../web/js/model/fuzzy.js';
import { NodeCatalog } from '../../../web/js/model/catalog.js';
import { objectInfo } from './helpers.mjs';

const defs = new NodeCatalog(objectInfo).all();

test('in:/out: tokens are split off the query', () => {
  assert.deepEqual(parseQuery('vae in:latent'), { text: 'vae', input: 'LATENT', output: null });
  assert.deepEqual(parseQuery('out:image  decode input:vae'), { text: 'decode', input: 'VAE', output: 'IMAGE' });
});

test('type filters: inputs include widgets that take links; a Primitive only feeds widget types', () => {
  const takesLatent = searchNodes(defs, '', typeFilter('LATENT', null)).map((d) => d.name);
  assert.deepEqual(new Set(takesLatent), new Set(['KSampler', 'VAEDecode', 'LatentUpscale', 'PreviewAny', 'Reroute']));
  const takesInt = searchNodes(defs, '', typeFilter('INT', null)).map((d) => d.name);
  assert.ok(takesInt.includes('EmptyLatentImage'), 'width is a widget that can take an INT link');
  const givesInt = searchNodes(defs, '', typeFilter(null, 'INT')).map((d) => d.name);
  assert.ok(givesInt.includes('PrimitiveNode') && givesInt.includes('PrimitiveInt'));
  const givesModel = searchNodes(defs, '', typeFilter(null, 'MODEL')).map((d) => d.name);
  assert.deepEqual(new Set(givesModel), new Set(['CheckpointLoaderSimple', 'LoraLoader', 'Reroute']));
});
