// The image upload button that follows an `image_upload` combo (LoadImage): pick a file, send it to
// POST /upload/image, select it in the combo. The node shows the selected image as a thumbnail.

import { paintButton } from './paint.js';

export const uploadWidget = {
  draw(ctx, w) {
    paintButton(ctx, w.rect, 'Choose an image to upload…', { hover: w.hover, lowDetail: w.lowDetail });
  },

  // The file chooser opens on release: browsers allow it only with a user activation, which a
  // mouse press grants after its pointerdown has been handled.
  pointerDown(env, w) {
    return {
      move() {},
      end() { env.ui.chooseFile('image/*', (file) => env.uploadImage(w.node.id, w.def.controls, file, w.def.folder)); },
      cancel() {},
    };
  },
};

/** The URL of the image a LoadImage-style node has selected, for its thumbnail. */
export function uploadPreviewUrl(api, value, folder = 'input') {
  if (!value) return null;
  const [name, annotated] = String(value).split(' [');
  const type = annotated ? annotated.replace(']', '') : folder;
  const parts = name.split('/');
  const filename = parts.pop();
  return api.viewUrl({ filename, subfolder: parts.join('/'), type });
}
