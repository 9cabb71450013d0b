// Small pieces every view uses.
import { html, useEffect, useState } from './lib.js';
import { href } from './router.js';
import { Time } from './time.js';

export function Loading({ what = 'Loading' }) {
  return html`<p class="muted loading">${what}…</p>`;
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message || String(error)}</p>`;
}

// A pid that opens the process's page.
export function Pid({ pid, name }) {
  if (!pid) return html`<span class="muted">—</span>`;
  return html`<a class="pid" href=${href('process', pid)} title=${name || pid}>${name ? html`${name} <small>${pid}</small>` : pid}</a>`;
}

export function Tabs({ tabs, current, onPick }) {
  return html`<nav class="tabs" role="tablist">${tabs.map(([id, label]) => html`
    <button role="tab" aria-selected=${id === current} class=${id === current ? 'on' : ''}
      onClick=${() => onPick(id)}>${label}</button>`)}</nav>`;
}

// A column header that sorts: clicking it sorts by it, again reverses.
export function SortHeader({ id, label, sort, dir, onSort, numeric }) {
  const on = sort === id;
  const next = on ? (dir === 'desc' ? 'asc' : 'desc') : (numeric ? 'desc' : 'asc');
  return html`<th class=${`sortable${numeric ? ' num' : ''}${on ? ' on' : ''}`} aria-sort=${on ? (dir === 'desc' ? 'descending' : 'ascending') : 'none'}>
    <button onClick=${() => onSort(id, next)}>${label}${on ? (dir === 'desc' ? ' ▾' : ' ▴') : ''}</button></th>`;
}

// An input whose value reaches `onChange` once typing pauses.
export function Search({ value, onChange, placeholder, delay = 250 }) {
  const [text, setText] = useState(value || '');
  useEffect(() => setText(value || ''), [value]);
  useEffect(() => {
    if ((value || '') === text) return undefined;
    const t = setTimeout(() => onChange(text), delay);
    return () => clearTimeout(t);
  }, [text]);
  return html`<input type="search" class="search" placeholder=${placeholder} value=${text}
    onInput=${(e) => setText(e.currentTarget.value)} />`;
}

export function EventRow({ e, onPick, selected }) {
  return html`<tr class=${`ev ev-${e.type}${selected ? ' selected' : ''}`} data-id=${e.id} onClick=${() => onPick && onPick(e)}>
    <td class="t"><${Time} ts=${e.ts} label=${`#${e.id}`} /></td>
    <td><span class=${`type type-${e.type}`}>${e.type}</span></td>
    <td><${Pid} pid=${e.pid} /></td>
    <td class="summary"><code>${e.summary}</code></td>
  </tr>`;
}

export const bytes = (n) => (n == null ? '—'
  : n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);

export const count = (n) => (n == null ? '—' : n.toLocaleString('en-US'));
