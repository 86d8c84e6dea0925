import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { readPngText, readPngWorkflow, PngFormatError } from '../../../web/js/model/png-metadata.js';

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  return out; // CRC left zero: the reader does not check it
}

function png(...chunks) {
  const signature = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  const ihdr = chunk('IHDR', Buffer.alloc(13));
  return new Uint8Array(Buffer.concat([signature, ihdr, ...chunks, chunk('IEND', Buffer.alloc(0))]));
}

test('tEXt, zTXt and iTXt (plain and compressed) are read', async () => {
  const bytes = png(
    chunk('tEXt', Buffer.from('prompt\0{"1":{"class_type":"X","inputs":{}}}', 'latin1')),
    chunk('zTXt', Buffer.concat([Buffer.from('note\0\0', 'latin1'), deflateSync(Buffer.from('zipped'))])),
    chunk('iTXt', Buffer.concat([Buffer.from('workflow\0\0\0\0\0', 'latin1'), Buffer.from('{"nodes":[],"title":"ü"}', 'utf8')])),
    chunk('iTXt', Buffer.concat([Buffer.from('packed\0\x01\0en\0\0', 'latin1'), deflateSync(Buffer.from('ünïcode', 'utf8'))])),
  );
  const texts = await readPngText(bytes.buffer);
  assert.equal(texts.note, 'zipped');
  assert.equal(texts.packed, 'ünïcode');
  const { workflow, prompt } = await readPngWorkflow(bytes);
  assert.deepEqual(workflow, { nodes: [], title: 'ü' });
  assert.equal(prompt['1'].class_type, 'X');
});

test('a PNG without metadata gives nulls; other files are refused', async () => {
  assert.deepEqual(await readPngWorkflow(png()), { workflow: null, prompt: null });
  await assert.rejects(readPngText(new Uint8Array([1, 2, 3])), PngFormatError);
});
