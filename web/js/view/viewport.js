// The camera: litegraph's convention (`extra.ds` in workflow files), screen = (graph + offset) * scale,
// in CSS pixels of the canvas element.

export const MIN_SCALE = 0.1;
export const MAX_SCALE = 10;

export class Viewport {
  constructor() {
    this.scale = 1;
    this.offset = [0, 0];
  }

  toGraph(sx, sy) {
    return [sx / this.scale - this.offset[0], sy / this.scale - this.offset[1]];
  }

  toScreen(gx, gy) {
    return [(gx + this.offset[0]) * this.scale, (gy + this.offset[1]) * this.scale];
  }

  /** Move the view by a screen-space delta. */
  panBy(dx, dy) {
    this.offset = [this.offset[0] + dx / this.scale, this.offset[1] + dy / this.scale];
  }

  /** Zoom by `factor`, keeping the graph point under screen point (sx, sy) where it is. */
  zoomAt(sx, sy, factor) {
    const [gx, gy] = this.toGraph(sx, sy);
    this.scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * factor));
    this.offset = [sx / this.scale - gx, sy / this.scale - gy];
  }

  /** Show graph rectangle [x, y, w, h] inside a screen of width × height, with a margin. */
  fit([x, y, w, h], width, height, margin = 40) {
    const scale = Math.min((width - 2 * margin) / Math.max(w, 1), (height - 2 * margin) / Math.max(h, 1));
    this.scale = Math.min(1.5, Math.max(MIN_SCALE, scale));
    this.offset = [(width / this.scale - w) / 2 - x, (height / this.scale - h) / 2 - y];
  }

  /** The graph rectangle a screen of width × height shows. */
  visibleRect(width, height) {
    const [x, y] = this.toGraph(0, 0);
    return [x, y, width / this.scale, height / this.scale];
  }

  get ds() {
    return { scale: this.scale, offset: [...this.offset] };
  }

  set ds(value) {
    if (!value) return;
    this.scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, Number(value.scale) || 1));
    this.offset = [Number(value.offset?.[0]) || 0, Number(value.offset?.[1]) || 0];
  }
}
