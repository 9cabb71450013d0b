// Erlang terms as the API writes them (ElixirScope.UI.TermJSON: tagged JSON), shown
// as Elixir: on one line (termText, TermInline), or as a collapsible tree (TermTree)
// that draws only the rows in view, so that a state of hundreds of kilobytes open
// several levels deep re-renders in a few milliseconds.
import { html, useLayoutEffect, useMemo, useRef, useState } from './lib.js';

const isObj = (t) => t !== null && typeof t === 'object' && !Array.isArray(t);
const ATOM_PLAIN = /^[a-z_][a-zA-Z0-9_@]*[?!]?$/;

function atomText(name) {
  if (name.startsWith('Elixir.')) return name.slice(7);
  return ATOM_PLAIN.test(name) ? `:${name}` : `:${JSON.stringify(name)}`;
}

// A keyword key ("name: "), when the atom allows the short form.
const keyLabel = (name) => (ATOM_PLAIN.test(name) ? `${name}:` : `${JSON.stringify(name)}:`);

const isAtom = (t) => isObj(t) && typeof t.a === 'string';
const isPair = (t) => isObj(t) && Array.isArray(t.t) && t.t.length === 2;
// A keyword list, as the C diff takes one (key by key): 2-tuples with atom keys, no
// key twice. Other lists are compared (and shown) position by position.
const keywordMemo = new WeakMap();
function isKeyword(list) {
  if (!Array.isArray(list) || list.length === 0) return false;
  let known = keywordMemo.get(list);
  if (known === undefined) {
    known = list.every((e) => isPair(e) && isAtom(e.t[0]));
    if (known && list.length > 1) {
      const keys = new Set();
      for (const e of list) { if (keys.has(e.t[0].a)) { known = false; break; } keys.add(e.t[0].a); }
    }
    keywordMemo.set(list, known);
  }
  return known;
}

// The path key of a map key: what diffPathKey writes for it.
function mapKey(k) {
  if (typeof k === 'string') return JSON.stringify(k);
  if (isAtom(k)) return atomText(k.a);
  return termText(k);
}

// How many children a container has; -1 for a scalar.
function size(t) {
  if (Array.isArray(t)) return t.length;
  if (!isObj(t)) return -1;
  if (Array.isArray(t.t)) return t.t.length;
  if (Array.isArray(t.m)) return t.m.length;
  if (Array.isArray(t.il)) return t.il.length + 1;
  return -1;
}

// The i-th child of a container (size(t) of them).
function child(t, i) {
  if (Array.isArray(t)) return isKeyword(t) ? t[i].t[1] : t[i];
  if (Array.isArray(t.t)) return t.t[i];
  if (Array.isArray(t.m)) { const [k, v] = t.m[i]; return isObj(k) && 'cut' in k ? k : v; }
  return i < t.il.length ? t.il[i] : t.tl;
}

// The part child `i` of container `t` adds to a path key (see diffPathKey).
function childKey(t, i) {
  if (Array.isArray(t)) {
    if (isKeyword(t)) return atomText(t[i].t[0].a);
    return isObj(t[i]) && 'cut' in t[i] ? `cut${i}` : `${i}`;
  }
  if (Array.isArray(t.m)) {
    const [k] = t.m[i];
    return isObj(k) && 'cut' in k ? `cut${i}` : mapKey(k);
  }
  if (Array.isArray(t.il)) return i < t.il.length ? `${i}` : 'tail';
  return `${i}`;
}

// The label of child `i` of container `t`, as the tree shows it.
function label(t, i) {
  if (Array.isArray(t)) {
    if (isKeyword(t)) return keyLabel(t[i].t[0].a);
    return isObj(t[i]) && 'cut' in t[i] ? '…' : `${i}`;
  }
  if (Array.isArray(t.t)) return `${i}`;
  if (Array.isArray(t.m)) {
    const [k] = t.m[i];
    if (isObj(k) && 'cut' in k) return '…';
    return isAtom(k) ? keyLabel(k.a) : `${termText(k, 60)} =>`;
  }
  if (Array.isArray(t.il)) return i < t.il.length ? `${i}` : 'tail';
  return '';
}

// The brackets a container opens with and closes with, and its size.
function shape(t) {
  if (Array.isArray(t)) return ['[', ']', t.length];
  if (Array.isArray(t.t)) return ['{', '}', t.t.length];
  if (Array.isArray(t.m)) return [t.s ? `%${atomText(t.s)}{` : '%{', '}', t.m.length];
  if (Array.isArray(t.il)) return ['[', ']', t.il.length + 1];
  return ['', '', 0];
}

// One line of Elixir, cut at about `width` characters.
export function termText(t, width = 200) {
  const out = { s: '', left: width };
  write(t, out);
  return out.left < 0 ? `${out.s.slice(0, width)}…` : out.s;
}

function put(out, s) { out.s += s; out.left -= s.length; }

function write(t, out) {
  if (out.left < 0) return;
  if (t === null) return put(out, 'nil');
  if (typeof t === 'boolean' || typeof t === 'number') return put(out, String(t));
  if (typeof t === 'string') return put(out, JSON.stringify(t));
  if (Array.isArray(t)) {
    if (isKeyword(t)) {
      put(out, '[');
      t.forEach((e, i) => { if (i) put(out, ', '); put(out, `${keyLabel(e.t[0].a)} `); write(e.t[1], out); });
      return put(out, ']');
    }
    return seq('[', t, ']', out);
  }
  if ('a' in t) return put(out, atomText(t.a));
  if ('i' in t) return put(out, t.i);
  if ('p' in t) return put(out, `#PID${t.p}`);
  if ('o' in t) return put(out, t.o);
  if ('b' in t) return put(out, t.b);
  if ('str' in t) return put(out, `${JSON.stringify(t.str)}…(${t.size} bytes)`);
  if ('cut' in t) return put(out, `…${t.cut} more`);
  if ('t' in t) return seq('{', t.t, '}', out);
  if ('m' in t) {
    put(out, t.s ? `%${atomText(t.s)}{` : '%{');
    t.m.forEach(([k, v], i) => {
      if (i) put(out, ', ');
      if (isObj(k) && 'cut' in k) return write(k, out);
      if (isAtom(k)) put(out, `${keyLabel(k.a)} `); else { write(k, out); put(out, ' => '); }
      return write(v, out);
    });
    return put(out, '}');
  }
  if ('il' in t) {
    put(out, '[');
    t.il.forEach((e, i) => { if (i) put(out, ', '); write(e, out); });
    put(out, ' | ');
    write(t.tl, out);
    return put(out, ']');
  }
  return put(out, JSON.stringify(t));
}

function seq(open, items, close, out) {
  put(out, open);
  items.forEach((e, i) => { if (i) put(out, ', '); write(e, out); });
  put(out, close);
}

export function TermInline({ term, width = 200 }) {
  const text = termText(term, width);
  return html`<code class="term" title=${text.length > 60 ? termText(term, 4000) : null}>${text}</code>`;
}

// A diff path (the keys from the root, as the API writes them) as the tree's path key.
export const diffPathKey = (path) => path.map((k) => (typeof k === 'number' ? `${k}` : mapKey(k))).join('\u0001');

export function pathText(path) {
  if (path.length === 0) return '(whole state)';
  return path.map((k) => (typeof k === 'number' ? `[${k}]` : isAtom(k) ? `.${k.a}` : `[${termText(k, 60)}]`)).join('');
}

const ROW = 20;

const SEP = '\u0001';

// The open part of a tree as rows, built only where they are drawn. count() walks
// the open part allocating nothing (path keys are built only on the way to a node
// the user opened or closed, whose state overrides `openDepth`); rows() builds the
// rows from `from` to `to`, skipping whole subtrees before them by their count. So a
// step through a state of thousands of open rows costs one allocation-free walk and
// a screenful of rows. (Exported for bench/ui_tree_bench.mjs.)
export function tree(term, openDepth, expanded, changes) {
  const hot = new Set();
  for (const k of expanded.keys()) {
    for (let i = k.indexOf(SEP); i !== -1; i = k.indexOf(SEP, i + 1)) hot.add(k.slice(0, i));
  }
  hot.add('');
  const join = (key, t, i, depth) => (depth === 0 ? childKey(t, i) : key + SEP + childKey(t, i));
  const isOpen = (n, key, depth) => {
    if (n <= 0) return false;
    const set = key === null ? undefined : expanded.get(key);
    return set === undefined ? depth < openDepth : set;
  };
  const count = (t, key, depth) => {
    const n = size(t);
    if (!isOpen(n, key, depth)) return 1;
    const keyed = key !== null && hot.has(key);
    let rows = 1;
    for (let i = 0; i < n; i += 1) rows += count(child(t, i), keyed ? join(key, t, i, depth) : null, depth + 1);
    return rows;
  };
  const rows = (from, to) => {
    const out = [];
    let pos = 0;
    const walk = (t, up, index, key, depth) => {
      const n = size(t);
      const open = isOpen(n, key, depth);
      if (pos >= from) out.push({ t, up, index, key, depth, n, open, change: changes.get(key) });
      pos += 1;
      for (let i = 0; open && i < n && pos < to; i += 1) {
        const c = child(t, i);
        const k = join(key, t, i, depth);
        const skip = pos < from ? count(c, k, depth + 1) : 0;
        if (pos + skip <= from && skip > 0) pos += skip;
        else walk(c, t, i, k, depth + 1);
      }
    };
    walk(term, null, 0, '', 0);
    return out;
  };
  return { total: count(term, '', 0), rows };
}

// A term as a tree, `openDepth` levels open at first; what the user opened or closed
// is kept in `expanded` (a Map the caller keeps, so that it survives stepping), and
// the paths in `changes` (Map path key -> 'added' | 'changed') are highlighted.
export function TermTree({ term, openDepth = 3, expanded, onToggle, changes = new Map(), height = 480 }) {
  const [top, setTop] = useState(0);
  const box = useRef(null);
  const t = useMemo(
    () => tree(term, openDepth, expanded, changes),
    [term, openDepth, expanded, expanded.version, changes],
  );
  useLayoutEffect(() => { if (box.current && box.current.scrollTop > t.total * ROW) box.current.scrollTop = 0; }, [term]);
  const first = Math.max(0, Math.floor(top / ROW) - 10);
  const shown = t.rows(first, first + Math.ceil(height / ROW) + 20);
  return html`<div class="tree" ref=${box} data-rows=${t.total} style=${{ height: `${Math.min(height, t.total * ROW + 2)}px` }}
      onScroll=${(e) => setTop(e.currentTarget.scrollTop)} role="tree">
    <div style=${{ height: `${t.total * ROW}px`, position: 'relative' }}>
      <div style=${{ transform: `translateY(${first * ROW}px)` }}>
        ${shown.map((r) => html`<div key=${r.key} class=${`row${r.change ? ` ch-${r.change}` : ''}`} role="treeitem"
            data-path=${r.key} style=${{ paddingLeft: `${r.depth * 16 + 4}px` }}>
          ${r.n > 0
            ? html`<button class="twisty" onClick=${() => onToggle(r.key, !r.open)} aria-expanded=${r.open}>${r.open ? '▾' : '▸'}</button>`
            : html`<span class="twisty"></span>`}
          ${r.up !== null && html`<span class="key">${label(r.up, r.index)}</span>`}
          ${r.n > 0
            ? (r.open
              ? html`<span class="punct">${shape(r.t)[0]}</span><span class="count">${shape(r.t)[2]}</span>`
              : html`<code class="term">${termText(r.t, 120)}</code>`)
            : html`<code class="term">${termText(r.t, 160)}</code>`}
        </div>`)}
      </div>
    </div>
  </div>`;
}

// The state a tree's open/closed overrides live in: a Map with a version, so a change
// re-renders the tree without copying the map.
export function useExpanded() {
  const [state, setState] = useState(() => { const m = new Map(); m.version = 0; return { m }; });
  const toggle = (key, open) => {
    state.m.set(key, open);
    state.m.version += 1;
    setState({ m: state.m });
  };
  return [state.m, toggle];
}
