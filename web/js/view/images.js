// Image cache for the canvas: result images by URL, live previews by Blob. Loading is async; when a
// picture arrives the canvas is asked to redraw.

export class ImageCache {
  #byUrl = new Map();
  #byBlob = new WeakMap();
  #onLoad;

  constructor(onLoad) {
    this.#onLoad = onLoad;
  }

  /** The image for `url` if it has loaded, else null (and a load is under way). */
  url(url) {
    let entry = this.#byUrl.get(url);
    if (!entry) {
      const img = new Image();
      entry = { img, ok: false, failed: false };
      img.onload = () => { entry.ok = true; this.#onLoad(); };
      img.onerror = () => { entry.failed = true; this.#onLoad(); };
      img.src = url;
      this.#byUrl.set(url, entry);
      if (this.#byUrl.size > 400) this.#byUrl.delete(this.#byUrl.keys().next().value);
    }
    return entry.ok ? entry.img : null;
  }

  status(url) {
    const entry = this.#byUrl.get(url);
    if (!entry) return 'none';
    return entry.ok ? 'loaded' : entry.failed ? 'failed' : 'loading';
  }

  /** A decoded preview frame for `blob`, or null while it decodes. */
  blob(blob) {
    let entry = this.#byBlob.get(blob);
    if (!entry) {
      entry = { bitmap: null };
      this.#byBlob.set(blob, entry);
      createImageBitmap(blob).then((bitmap) => { entry.bitmap = bitmap; this.#onLoad(); }, () => {});
    }
    return entry.bitmap;
  }
}
