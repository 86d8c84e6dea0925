// Reads an /object_info JSON on stdin and prints {node: [widget names in widgets_values order]},
// for tests/web/test_widget_layout_parity.py to hold against the server's converter.
import { parseNodeDef } from '../../../web/js/model/node-defs.js';

let text = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { text += chunk; });
process.stdin.on('end', () => {
  const out = {};
  for (const [name, info] of Object.entries(JSON.parse(text))) out[name] = parseNodeDef(name, info).widgets.map((w) => w.name);
  process.stdout.write(JSON.stringify(out));
});
