import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newDoc, slotOf } from './helpers.mjs';

test('addNode builds sockets, outputs and default widget values from the definition', () => {
  const doc = newDoc();
  const k = doc.addNode('KSampler', [10, 20]);
  assert.equal(k.id, 1);
  assert.deepEqual(k.inputs.map((i) => i.name), ['model', 'positive', 'negative', 'latent_image']);
  assert.deepEqual(k.widgets_values, [0, 'randomize', 20, 8, 'euler', 'simple', 1]);
  assert.ok(k.size[0] >= 240 && k.size[1] > 100);
});

test('connect links compatible sockets and refuses incompatible ones with a reason', () => {
  const doc = newDoc();
  const ckpt = doc.addNode('CheckpointLoaderSimple', [0, 0]);
  const k = doc.addNode('KSampler', [300, 0]);
  const link = doc.connect(ckpt.id, 0, k.id, slotOf(k.inputs, 'model'));
  assert.equal(link.type, 'MODEL');
  assert.deepEqual(ckpt.outputs[0].links, [link.id]);
  assert.equal(k.inputs[0].link, link.id);
  const verdict = doc.canConnect(ckpt.id, 1, k.id, slotOf(k.inputs, 'latent_image'));
  assert.equal(verdict.ok, false);
  assert.match(verdict.reason, /CLIP cannot go into LATENT/);
  assert.throws(() => doc.connect(ckpt.id, 1, k.id, 3), /CLIP cannot go into LATENT/);
});

test('a new link replaces the one feeding the input; loops are refused', () => {
  const doc = newDoc();
  const a = doc.addNode('ImageInvert', [0, 0]);
  const b = doc.addNode('ImageInvert', [200, 0]);
  const c = doc.addNode('ImageInvert', [400, 0]);
  const first = doc.connect(a.id, 0, c.id, 0);
  const second = doc.connect(b.id, 0, c.id, 0);
  assert.equal(doc.links.has(first.id), false);
  assert.deepEqual(a.outputs[0].links, []);
  assert.equal(c.inputs[0].link, second.id);
  doc.connect(c.id, 0, a.id, 0);
  assert.match(doc.canConnect(a.id, 0, b.id, 0).reason, /loop/);
  assert.match(doc.canConnect(a.id, 0, a.id, 0).reason, /itself/);
});

test('a link onto a widget gives it a socket; unlinking turns it back into a widget', () => {
  const doc = newDoc();
  const prim = doc.addNode('PrimitiveInt', [0, 0]);
  const k = doc.addNode('KSampler', [300, 0]);
  const link = doc.connectToWidget(prim.id, 0, k.id, 'steps');
  const slot = doc.widgetInputSlot(k, 'steps');
  assert.equal(slot, 4);
  assert.deepEqual(k.inputs[slot], { name: 'steps', type: 'INT', link: link.id, widget: { name: 'steps' } });
  assert.equal(doc.isWidgetLinked(k, 'steps'), true);
  assert.throws(() => doc.connectToWidget(prim.id, 0, k.id, 'sampler_name'), /INT cannot go into COMBO/);
  assert.equal(doc.widgetInputSlot(k, 'sampler_name'), -1, 'a refused link leaves no socket behind');
  doc.removeLink(link.id);
  assert.equal(doc.widgetInputSlot(k, 'steps'), -1);
  assert.equal(k.inputs.length, 4);
});

test('removing a widget socket shifts later link slots down', () => {
  const doc = newDoc();
  const p1 = doc.addNode('PrimitiveInt', [0, 0]);
  const p2 = doc.addNode('PrimitiveFloat', [0, 100]);
  const k = doc.addNode('KSampler', [300, 0]);
  doc.connectToWidget(p1.id, 0, k.id, 'steps');
  const cfgLink = doc.connectToWidget(p2.id, 0, k.id, 'cfg');
  assert.equal(cfgLink.target_slot, 5);
  doc.removeWidgetInput(k.id, 'steps');
  assert.equal(doc.links.get(cfgLink.id).target_slot, 4);
  assert.equal(k.inputs[4].link, cfgLink.id);
});

test('PrimitiveNode adopts the widget it drives and mirrors its value', () => {
  const doc = newDoc();
  const prim = doc.addNode('PrimitiveNode', [0, 0]);
  const k1 = doc.addNode('KSampler', [300, 0]);
  const k2 = doc.addNode('KSampler', [300, 400]);
  assert.match(doc.canConnect(prim.id, 0, k1.id, 0).reason, /only drive widget inputs/);
  doc.setWidgetValue(k1.id, 0, 1234);
  doc.connectToWidget(prim.id, 0, k1.id, 'seed');
  assert.equal(prim.outputs[0].type, 'INT');
  assert.equal(prim.outputs[0].name, 'INT');
  assert.deepEqual(prim.outputs[0].widget, { name: 'seed' });
  assert.deepEqual(doc.defOf(prim).widgets.map((w) => w.name), ['seed', 'control_after_generate']);
  assert.deepEqual(prim.widgets_values, [1234, 'fixed']);
  doc.connectToWidget(prim.id, 0, k2.id, 'seed');
  assert.equal(k2.widgets_values[0], 1234);
  doc.setWidgetValue(prim.id, 0, 77);
  assert.equal(k1.widgets_values[0], 77);
  assert.equal(k2.widgets_values[0], 77);
  assert.match(doc.canConnect(prim.id, 0, k1.id, doc.ensureWidgetInput(k1.id, 'cfg')).reason, /INT cannot go into FLOAT/);
});

test('a Reroute node takes the type of what feeds it', () => {
  const doc = newDoc();
  const ckpt = doc.addNode('CheckpointLoaderSimple', [0, 0]);
  const reroute = doc.addNode('Reroute', [200, 0]);
  const k = doc.addNode('KSampler', [400, 0]);
  doc.connect(ckpt.id, 2, reroute.id, 0);
  assert.equal(doc.outputType(reroute, 0), 'VAE');
  assert.equal(doc.canConnect(reroute.id, 0, k.id, 0).ok, false);
  const decode = doc.addNode('VAEDecode', [400, 300]);
  doc.connect(reroute.id, 0, decode.id, 1);
  assert.equal(doc.inputType(reroute, 0), 'VAE');
  assert.equal(doc.canConnect(ckpt.id, 0, reroute.id, 0).ok, false, 'a MODEL cannot feed a reroute that leads to a VAE input');
});

test('reroute points: insert into a link path, remove, and vanish with their link', () => {
  const doc = newDoc();
  const a = doc.addNode('ImageInvert', [0, 0]);
  const b = doc.addNode('ImageInvert', [400, 0]);
  const link = doc.connect(a.id, 0, b.id, 0);
  const r1 = doc.addReroute(link.id, [200, 50]);
  const r2 = doc.addReroute(link.id, [300, 50], r1.id);
  const r0 = doc.addReroute(link.id, [100, 50], null);
  assert.deepEqual(doc.reroutePath(link), [r0.id, r1.id, r2.id]);
  doc.removeReroute(r1.id);
  assert.deepEqual(doc.reroutePath(doc.links.get(link.id)), [r0.id, r2.id]);
  doc.removeLink(link.id);
  assert.equal(doc.reroutes.size, 0);
});

test('groups carry the nodes inside them', () => {
  const doc = newDoc();
  const inside = doc.addNode('ImageInvert', [20, 60]);
  doc.addNode('ImageInvert', [900, 900]);
  const g = doc.addGroup([0, 0, 500, 400], 'Mine');
  assert.deepEqual(doc.nodesInGroup(g.id), [inside.id]);
});

test('removing a node removes its links from both ends', () => {
  const doc = newDoc();
  const a = doc.addNode('ImageInvert', [0, 0]);
  const b = doc.addNode('ImageInvert', [300, 0]);
  const c = doc.addNode('ImageInvert', [600, 0]);
  doc.connect(a.id, 0, b.id, 0);
  doc.connect(b.id, 0, c.id, 0);
  doc.removeNodes([b.id]);
  assert.equal(doc.links.size, 0);
  assert.deepEqual(a.outputs[0].links, []);
  assert.equal(c.inputs[0].link, null);
});

test('mode and collapse toggle for a selection', () => {
  const doc = newDoc();
  const a = doc.addNode('ImageInvert', [0, 0]);
  const b = doc.addNode('ImageInvert', [300, 0]);
  doc.toggleMode([a.id, b.id], 4);
  assert.deepEqual([a.mode, b.mode], [4, 4]);
  doc.toggleMode([a.id, b.id], 4);
  assert.deepEqual([a.mode, b.mode], [0, 0]);
  doc.toggleCollapsed([a.id]);
  assert.equal(a.flags.collapsed, true);
  doc.setTitle(a.id, 'Mine');
  assert.equal(doc.titleOf(a), 'Mine');
  doc.setTitle(a.id, '');
  assert.equal(doc.titleOf(a), 'Invert Image');
});

test('the starter workflow prefers the shipped starter model, else the first checkpoint', async () => {
  const { buildDefaultWorkflow } = await import('../../../web/js/model/default-workflow.js');
  const withStarter = newDoc();
  const roles = buildDefaultWorkflow(withStarter);
  assert.equal(roles.loader.widgets_values[0], 'weft-starter.safetensors');
  assert.equal(withStarter.links.size, 9);
  // prompts and size the starter model understands (64x64 images from a 4x autoencoder)
  assert.equal(roles.positive.widgets_values[0], 'a red circle at the top left on a blue background');
  assert.equal(roles.negative.widgets_values[0], '');
  assert.deepEqual(roles.latent.widgets_values.slice(0, 2), [128, 128]);
  const info = structuredClone((await import('./helpers.mjs')).objectInfo);
  info.CheckpointLoaderSimple.input.required.ckpt_name[0] = ['a.safetensors', 'b.safetensors'];
  const { NodeCatalog } = await import('../../../web/js/model/catalog.js');
  const { GraphDocument } = await import('../../../web/js/model/graph-document.js');
  const other = new GraphDocument(new NodeCatalog(info));
  const generic = buildDefaultWorkflow(other);
  assert.equal(generic.loader.widgets_values[0], 'a.safetensors');
  assert.equal(generic.latent.widgets_values[0], 512);
});
