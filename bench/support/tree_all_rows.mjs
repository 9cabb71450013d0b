// The state tree's first algorithm, kept to measure against (bench/ui_tree_bench.mjs):
// every row of the open part built as an object with its full path key, on every step.
import { termText } from '../../priv/ui/js/term.js';

const isObj = (t) => t !== null && typeof t === 'object' && !Array.isArray(t);
const isAtom = (t) => isObj(t) && typeof t.a === 'string';
const isPair = (t) => isObj(t) && Array.isArray(t.t) && t.t.length === 2;
const isKeyword = (l) => Array.isArray(l) && l.length > 0 && l.every((e) => isPair(e) && isAtom(e.t[0]))
  && new Set(l.map((e) => e.t[0].a)).size === l.length;

function children(t) {
  if (Array.isArray(t)) {
    if (isKeyword(t)) return t.map((e) => [`${e.t[0].a}:`, `:${e.t[0].a}`, e.t[1]]);
    return t.map((e, i) => [`${i}`, `${i}`, e]);
  }
  if (!isObj(t)) return null;
  if (Array.isArray(t.t)) return t.t.map((e, i) => [`${i}`, `${i}`, e]);
  if (Array.isArray(t.m)) return t.m.map(([k, v]) => [termText(k, 60), termText(k), v]);
  if (Array.isArray(t.il)) return [...t.il.map((e, i) => [`${i}`, `${i}`, e]), ['tail', 'tail', t.tl]];
  return null;
}

export function allRows(term, openDepth, expanded, changes) {
  const rows = [];
  const walk = (t, label, path, depth) => {
    const kids = children(t);
    const key = path.join('\u0001');
    const open = kids !== null && kids.length > 0 && (expanded.has(key) ? expanded.get(key) : depth < openDepth);
    rows.push({ t, label, key, depth, kids, open, change: changes.get(key) });
    if (open) kids.forEach(([l, k, c]) => walk(c, l, [...path, k], depth + 1));
  };
  walk(term, null, [], 0);
  return rows;
}
