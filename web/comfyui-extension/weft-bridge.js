// Weft's extension for ComfyUI's frontend (served when `--front-end comfyui` or `--front-end-root`
// puts another front end at /). It adds what a user of that frontend needs to find Weft: a menu entry
// that opens Weft's own editor (at /weft/, on the same workflow store, so saved workflows appear in
// both) and a badge on the About page. Nothing else is changed in that frontend.
import { app } from '../../scripts/app.js';

const editorUrl = () => `${location.pathname.replace(/[^/]*$/, '')}weft/`;

app.registerExtension({
  name: 'Weft.Bridge',
  commands: [
    {
      id: 'Weft.OpenEditor',
      label: "Open in Weft's editor",
      icon: 'pi pi-external-link',
      function: () => window.open(editorUrl(), '_blank', 'noopener'),
    },
  ],
  menuCommands: [{ path: ['Weft'], commands: ['Weft.OpenEditor'] }],
  aboutPageBadges: [{ label: 'Served by Weft', url: editorUrl(), icon: 'pi pi-sitemap' }],
});
