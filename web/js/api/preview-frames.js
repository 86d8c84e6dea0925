// Binary websocket frames (facts §1.6): a 4-byte big-endian event type, then the payload.
//   1: [4-byte image type: 1 JPEG, 2 PNG][image bytes]
//   3: [4-byte node-id length][node id][UTF-8 progress text]
//   4: [4-byte JSON length][JSON {node_id, prompt_id, display_node_id, image_type}][image bytes]

export const PREVIEW_IMAGE = 1;
export const PROGRESS_TEXT = 3;
export const PREVIEW_IMAGE_WITH_METADATA = 4;

const IMAGE_TYPES = { 1: 'image/jpeg', 2: 'image/png' };

/** Decode one frame; null for event types the editor does not use. */
export function parseBinaryFrame(buffer) {
  const view = new DataView(buffer);
  if (buffer.byteLength < 8) return null;
  const event = view.getUint32(0);
  if (event === PREVIEW_IMAGE) {
    const imageType = IMAGE_TYPES[view.getUint32(4)] ?? 'image/jpeg';
    return { kind: 'preview', imageType, bytes: new Uint8Array(buffer, 8), meta: null };
  }
  if (event === PREVIEW_IMAGE_WITH_METADATA) {
    const length = view.getUint32(4);
    const meta = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, length)));
    return { kind: 'preview', imageType: meta.image_type ?? 'image/jpeg', bytes: new Uint8Array(buffer, 8 + length), meta };
  }
  if (event === PROGRESS_TEXT) {
    const length = view.getUint32(4);
    const nodeId = new TextDecoder().decode(new Uint8Array(buffer, 8, length));
    return { kind: 'text', nodeId, text: new TextDecoder().decode(new Uint8Array(buffer, 8 + length)) };
  }
  return null;
}
