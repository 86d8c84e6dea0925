// Fuzzy matching for the node search: every query character must appear in order; contiguous runs,
// word starts and early hits score higher. Scores a node on its display name, its type name and
// its category, the display name weighing most.

/** Score `text` against `query` (lower-cased already), or -1 if it does not match. */
export function fuzzyScore(query, text) {
  if (!query) return 0;
  const hay = text.toLowerCase();
  const exact = hay.indexOf(query);
  if (exact >= 0) return 1000 - exact * 2 - (hay.length - query.length) * 0.5 + (exact === 0 ? 200 : 0);
  let score = 0;
  let at = -1;
  let run = 0;
  for (const ch of query) {
    const found = hay.indexOf(ch, at + 1);
    if (found < 0) return -1;
    run = found === at + 1 ? run + 1 : 0;
    const wordStart = found === 0 || /[\s_/\-.]/.test(hay[found - 1]) || (text[found] !== hay[found]);
    score += 10 + run * 8 + (wordStart ? 12 : 0) - Math.min(found - at - 1, 10);
    at = found;
  }
  return score;
}

/**
 * Rank node definitions for `query`.
 * @param {object[]} defs
 * @param {string} query
 * @param {(def) => boolean} [accept]  a type filter
 */
export function searchNodes(defs, query, accept = () => true, limit = 100) {
  const q = query.trim().toLowerCase();
  const words = q.split(/\s+/).filter(Boolean);
  const ranked = [];
  for (const def of defs) {
    if (!accept(def)) continue;
    if (!q) {
      // Nothing typed (a link dropped on the canvas, say): everyday nodes first, then experimental
      // and testing ones, deprecated last; alphabetical within each.
      const unusual = def.experimental || def.category.startsWith('_for_testing');
      ranked.push({ def, score: -(def.deprecated ? 2 : 0) - (unusual ? 1 : 0) });
      continue;
    }
    // The whole query as a phrase: in the display name, or (spaces dropped) in the type name.
    const phrase = (field, text) => (field.includes(text) ? 2000 + (field.startsWith(text) ? 500 : 0) - field.length : 0);
    let total = Math.max(phrase(def.displayName.toLowerCase(), q), phrase(def.name.toLowerCase(), q.replace(/\s+/g, '')));
    let ok = true;
    for (const word of words) {
      const best = Math.max(fuzzyScore(word, def.displayName), fuzzyScore(word, def.name), fuzzyScore(word, def.category) * 0.6);
      if (best < 0) { ok = false; break; }
      total += best;
    }
    if (ok) ranked.push({ def, score: total - (def.deprecated ? 500 : 0) });
  }
  ranked.sort((a, b) => b.score - a.score || a.def.displayName.localeCompare(b.def.displayName));
  return ranked.slice(0, limit).map((r) => r.def);
}
