// Entry point: start the editor in the page and expose it as `window.weft`.
import { WeftApp } from './app.js';

const app = new WeftApp(document.body);
window.weft = app;
app.start().catch((error) => {
  console.error('Weft could not start:', error);
  document.body.dataset.ready = 'failed';
  const box = document.createElement('div');
  box.className = 'fatal';
  box.textContent = `Weft could not start: ${error.message}`;
  document.body.append(box);
});
