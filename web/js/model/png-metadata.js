// Text chunks of a PNG (tEXt, zTXt, iTXt), where Weft and ComfyUI keep the `prompt` (API JSON)
// and `workflow` (UI JSON) that made an image (facts §8). PNG layout: 8-byte signature, then chunks
// of [4-byte big-endian length][4-byte type][data][4-byte CRC].

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

export class PngFormatError extends Error {}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function decode(bytes, encoding) {
  return new TextDecoder(encoding).decode(bytes);
}

/** tEXt is Latin-1 by the standard, but some writers put UTF-8 there: take UTF-8 when it is valid. */
function decodeText(bytes) {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return decode(bytes, 'latin1');
  }
}

async function readChunk(type, data) {
  const zero = data.indexOf(0);
  if (zero < 0) return null;
  const keyword = decode(data.subarray(0, zero), 'latin1');
  if (type === 'tEXt') return [keyword, decodeText(data.subarray(zero + 1))];
  if (type === 'zTXt') return [keyword, decode(await inflate(data.subarray(zero + 2)), 'latin1')];
  // iTXt: keyword \0 compression-flag compression-method language \0 translated-keyword \0 text (UTF-8)
  const compressed = data[zero + 1] === 1;
  const langEnd = data.indexOf(0, zero + 3);
  const transEnd = data.indexOf(0, langEnd + 1);
  if (langEnd < 0 || transEnd < 0) return null;
  const text = data.subarray(transEnd + 1);
  return [keyword, decode(compressed ? await inflate(text) : text, 'utf-8')];
}

/** All text chunks of a PNG as {keyword: text}. Throws PngFormatError if it is not a PNG. */
export async function readPngText(buffer) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new PngFormatError('not a PNG file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const texts = {};
  for (let at = 8; at + 8 <= bytes.length;) {
    const length = view.getUint32(at);
    const type = decode(bytes.subarray(at + 4, at + 8), 'latin1');
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (type === 'IEND') break;
    if (type === 'tEXt' || type === 'zTXt' || type === 'iTXt') {
      const entry = await readChunk(type, data);
      if (entry) texts[entry[0]] = entry[1];
    }
    at += 12 + length;
  }
  return texts;
}

function parseJson(text) {
  if (text == null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The `workflow` and `prompt` a PNG carries (each null when absent or not JSON). */
export async function readPngWorkflow(buffer) {
  const texts = await readPngText(buffer);
  return { workflow: parseJson(texts.workflow), prompt: parseJson(texts.prompt) };
}
