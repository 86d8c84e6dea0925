// Colours: one per socket type (links take their type's colour) and one per node category, so a
// graph reads at a glance. Unknown types get a stable colour from a hash of their name.

export const TYPE_COLORS = Object.freeze({
  MODEL: '#b39ddb', CLIP: '#ffd500', VAE: '#ff6e6e', CONDITIONING: '#ffa931', LATENT: '#ff9cf9',
  IMAGE: '#64b5f6', MASK: '#81c784', CONTROL_NET: '#00d78d', CLIP_VISION: '#a8dadc',
  CLIP_VISION_OUTPUT: '#ad7452', STYLE_MODEL: '#c2ffae', UPSCALE_MODEL: '#8e8ee6', SAMPLER: '#ecb4b4',
  SIGMAS: '#cdffcd', NOISE: '#b0b0b0', GUIDER: '#66ffff', GLIGEN: '#bbbbdd', INT: '#6fcf97',
  FLOAT: '#56ccf2', STRING: '#f2c94c', BOOLEAN: '#eb5757', COMBO: '#bb86fc', '*': '#c0c0c0',
});

const CATEGORY_COLORS = Object.freeze({
  loaders: '#2c4a70', conditioning: '#6a5320', sampling: '#553072', latent: '#6a2d5e', image: '#1f5a66',
  mask: '#2f6138', utils: '#4a4a4a', advanced: '#3f3f66', model_patches: '#5c4030', _for_testing: '#555555',
  subgraph: '#3a5a5a', api: '#604040',
});

export const NODE_BG = '#2a2a2e';
export const NODE_BORDER = '#111114';
export const CANVAS_BG = '#18181b';
export const GRID_MINOR = '#222226';
export const GRID_MAJOR = '#2c2c31';
export const TEXT = '#e8e8ea';
export const TEXT_DIM = '#9a9aa3';
export const WIDGET_BG = '#1d1d21';
export const WIDGET_BORDER = '#3a3a40';
export const SELECTED = '#ffffff';
export const RUNNING = '#3ddc84';
export const ERROR = '#ff4d4d';
export const BYPASS_TINT = 'rgba(170, 60, 210, 0.35)';
export const FONT = '13px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
export const TITLE_FONT_PX = 14;

/** The title font at `px` graph units (titles grow at low zoom: view/draw-node.js). */
export function titleFont(px) {
  return `600 ${px}px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif`;
}

function hashHue(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h % 360;
}

export function typeColor(type) {
  const name = Array.isArray(type) ? 'COMBO' : String(type ?? '*');
  if (TYPE_COLORS[name]) return TYPE_COLORS[name];
  if (name.includes(',')) return TYPE_COLORS[name.split(',')[0].trim()] ?? `hsl(${hashHue(name)}, 60%, 65%)`;
  return `hsl(${hashHue(name)}, 60%, 65%)`;
}

export function categoryColor(category) {
  const top = (category ?? '').split('/')[0];
  return CATEGORY_COLORS[top] ?? (top ? `hsl(${hashHue(top)}, 30%, 30%)` : '#3a3a3f');
}

/** Colour presets offered in the node menu (title, body), as ComfyUI's palette names them. */
export const NODE_COLOR_PRESETS = Object.freeze({
  red: ['#322', '#533'], brown: ['#332922', '#593930'], green: ['#232', '#353'], blue: ['#223', '#335'],
  pale_blue: ['#2a363b', '#3f5159'], cyan: ['#233', '#355'], purple: ['#323', '#535'], yellow: ['#432', '#653'],
  black: ['#222', '#000'],
});
