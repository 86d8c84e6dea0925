// The workflow a first visit opens: text-to-image on the shipped starter model (or the first
// checkpoint the server lists), built through the document API from the server's own node
// definitions — so it is only as right as /object_info, never a stale copy of a file.

export const STARTER_CHECKPOINT = 'weft-starter.safetensors';

// What the starter model understands (docs/starter-model.md): one coloured shape on a plain
// background, 64x64 pixels. Its autoencoder downsamples 4x while EmptyLatentImage assumes 8x, so
// a 128x128 "empty latent" is the 16x16 latent of a 64x64 image.
export const STARTER_SETTINGS = {
  positive: 'a red circle at the top left on a blue background',
  negative: '',
  width: 128,
  height: 128,
  cfg: 5,
};
const GENERIC_SETTINGS = {
  positive: 'a lighthouse on a rocky coast at sunset, oil painting',
  negative: 'blurry, watermark, text',
};

export function setWidgetByName(doc, node, name, value) {
  const index = doc.defOf(node).widgets.findIndex((w) => w.name === name);
  if (index >= 0) doc.setWidgetValue(node.id, index, value);
}

function outputSlot(node, type) {
  return node.outputs.findIndex((o) => o.type === type);
}

function inputSlot(node, name) {
  return node.inputs.findIndex((i) => i.name === name);
}

function wire(doc, from, type, to, inputName) {
  if (!from || !to) return;
  const o = outputSlot(from, type);
  const i = inputSlot(to, inputName);
  if (o >= 0 && i >= 0) doc.connect(from.id, o, to.id, i);
}

/** Fill an empty document with the starter graph; returns the nodes by role. */
export function buildDefaultWorkflow(doc) {
  const place = (type, pos) => (doc.defFor(type) ? doc.addNode(type, pos) : null);
  const loader = place('CheckpointLoaderSimple', [40, 380]);
  const positive = place('CLIPTextEncode', [420, 140]);
  const negative = place('CLIPTextEncode', [420, 400]);
  const latent = place('EmptyLatentImage', [470, 640]);
  const sampler = place('KSampler', [880, 140]);
  const decode = place('VAEDecode', [1240, 140]);
  const save = place('SaveImage', [1480, 140]);

  let settings = GENERIC_SETTINGS;
  if (loader) {
    const choices = doc.defOf(loader).widgets.find((w) => w.name === 'ckpt_name')?.values ?? [];
    const pick = choices.includes(STARTER_CHECKPOINT) ? STARTER_CHECKPOINT : choices[0];
    if (pick) setWidgetByName(doc, loader, 'ckpt_name', pick);
    if (pick === STARTER_CHECKPOINT) settings = STARTER_SETTINGS;
  }
  if (positive) {
    positive.title = 'Positive prompt';
    setWidgetByName(doc, positive, 'text', settings.positive);
  }
  if (negative) {
    negative.title = 'Negative prompt';
    setWidgetByName(doc, negative, 'text', settings.negative);
  }
  if (latent && settings.width) {
    setWidgetByName(doc, latent, 'width', settings.width);
    setWidgetByName(doc, latent, 'height', settings.height);
  }
  if (sampler && settings.cfg) setWidgetByName(doc, sampler, 'cfg', settings.cfg);
  if (save) setWidgetByName(doc, save, 'filename_prefix', 'Weft');

  wire(doc, loader, 'CLIP', positive, 'clip');
  wire(doc, loader, 'CLIP', negative, 'clip');
  wire(doc, loader, 'MODEL', sampler, 'model');
  wire(doc, positive, 'CONDITIONING', sampler, 'positive');
  wire(doc, negative, 'CONDITIONING', sampler, 'negative');
  wire(doc, latent, 'LATENT', sampler, 'latent_image');
  wire(doc, sampler, 'LATENT', decode, 'samples');
  wire(doc, loader, 'VAE', decode, 'vae');
  wire(doc, decode, 'IMAGE', save, 'images');
  return { loader, positive, negative, latent, sampler, decode, save };
}
