// ComfyUI's editor fills `%date:FORMAT%` and `%NodeTitle.widget%` into `filename_prefix` values just
// before queueing; workflows carry such prefixes, so Weft does the same. The UI workflow saved into
// the image keeps the pattern; only the copy sent for conversion has it filled in.

const DATE_PARTS = {
  yyyy: (d) => String(d.getFullYear()),
  yy: (d) => String(d.getFullYear()).slice(-2),
  MM: (d) => String(d.getMonth() + 1).padStart(2, '0'),
  M: (d) => String(d.getMonth() + 1),
  dd: (d) => String(d.getDate()).padStart(2, '0'),
  d: (d) => String(d.getDate()),
  hh: (d) => String(d.getHours()).padStart(2, '0'),
  h: (d) => String(d.getHours()),
  mm: (d) => String(d.getMinutes()).padStart(2, '0'),
  m: (d) => String(d.getMinutes()),
  ss: (d) => String(d.getSeconds()).padStart(2, '0'),
  s: (d) => String(d.getSeconds()),
};

export function formatDate(format, date) {
  return format.replace(/yyyy|yy|MM|M|dd|d|hh|h|mm|m|ss|s/g, (part) => DATE_PARTS[part](date));
}

/** Fill the patterns of one text. `nodes` are workflow nodes; `widgetNames(node)` lists a node's widgets. */
export function replaceText(text, nodes, widgetNames, date = new Date()) {
  return text.replace(/%([^%]+)%/g, (match, body) => {
    if (body.startsWith('date:')) return formatDate(body.slice(5), date);
    const dot = body.lastIndexOf('.');
    if (dot < 0) return match;
    const [name, widget] = [body.slice(0, dot), body.slice(dot + 1)];
    const node = nodes.find((n) => n.title === name) ?? nodes.find((n) => n.properties?.['Node name for S&R'] === name);
    const index = node ? widgetNames(node).indexOf(widget) : -1;
    if (index < 0) return match;
    const value = node.widgets_values?.[index];
    return typeof value === 'number' || typeof value === 'string' ? String(value) : match;
  });
}

/** A copy of `workflow` whose filename_prefix values have their patterns filled in. */
export function withTextReplacements(workflow, widgetNames, date = new Date()) {
  const out = structuredClone(workflow);
  for (const node of out.nodes) {
    const names = widgetNames(node);
    names.forEach((name, i) => {
      const value = node.widgets_values?.[i];
      if (name === 'filename_prefix' && typeof value === 'string' && value.includes('%')) {
        node.widgets_values[i] = replaceText(value, workflow.nodes, widgetNames, date);
      }
    });
  }
  return out;
}
