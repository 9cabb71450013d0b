// Processes: the live ones, every one the recording has events of (alive or not),
// and the exited ones; search, sort, pages; a click opens a process; ticked rows open
// the sequence diagram of their messages. A loaded recording has no live tab.
import { html, useEffect, useLayoutEffect, useState } from '../lib.js';
import { useApi } from '../api.js';
import { go, href } from '../router.js';
import { Time } from '../time.js';
import {
  ErrorBox, Loading, Pid, Search, SortHeader, Tabs, bytes, count,
} from '../components.js';

const PAGE = 50;
const NUMERIC = new Set(['memory', 'reductions', 'mailbox']);

export function Processes({ route, meta }) {
  const p = route.params;
  // Without a view in the URL the server picks (live, or recorded for a loaded
  // recording): the page asks for rows before it knows which recording it shows.
  const loaded = meta ? meta.mode !== 'live' : false;
  const sort = p.sort || 'memory';
  const dir = p.dir || (NUMERIC.has(sort) ? 'desc' : 'asc');
  const offset = Number(p.offset || 0);
  const set = (changes) => go('processes', null, { ...p, ...changes });
  const [picked, setPicked] = useState([]);
  const params = p.view === 'exited'
    ? { view: p.view, before: p.before, limit: PAGE }
    : { view: p.view, sort, dir, q: p.q, offset, limit: PAGE };
  const { data, error, loading } = useApi('processes', params);
  const view = p.view || (data ? (data.live ? 'live' : 'recorded') : (loaded ? 'recorded' : 'live'));

  // The moment the first rows are on screen (the "processes view within 300 ms" target).
  useLayoutEffect(() => {
    if (data && data.items.length && window.__scope && !window.__scope.firstRows) {
      window.__scope.firstRows = performance.now();
    }
  }, [data]);

  const tick = (pid) => setPicked((xs) => (xs.includes(pid) ? xs.filter((x) => x !== pid) : [...xs, pid].slice(-12)));

  return html`<section class="view processes">
    <div class="toolbar">
      <${Tabs} current=${view} onPick=${(v) => go('processes', null, { view: v })}
        tabs=${[...(loaded ? [] : [['live', 'Live']]), ['recorded', 'Recorded'], ['exited', 'Exited']]} />
      ${view !== 'exited' && html`<${Search} value=${p.q} placeholder="pid, name or module"
        onChange=${(q) => set({ q, offset: 0 })} />`}
      ${picked.length > 0 && html`<a class="button" href=${href('messages', null, { pids: picked.join(',') })}>
        Sequence diagram of ${picked.length} process${picked.length > 1 ? 'es' : ''}</a>
        <button class="small" onClick=${() => setPicked([])}>clear</button>`}
    </div>
    <${ErrorBox} error=${error} />
    ${!data && loading && html`<${Loading} what="Reading processes" />`}
    ${data && (view !== 'exited'
    ? html`<${LiveTable} data=${data} live=${data.live} sort=${sort} dir=${dir} picked=${picked} onTick=${tick}
        onSort=${(s, d) => set({ sort: s, dir: d, offset: 0 })} />
        <${Pager} offset=${offset} total=${data.total} onGo=${(o) => set({ offset: o })} />`
    : html`<${ExitedTable} data=${data} picked=${picked} onTick=${tick} />
        ${data.next && html`<p><a class="button" href=${href('processes', null, { view: 'exited', before: data.next })}>Older</a></p>`}`)}
  </section>`;
}

function Pager({ offset, total, onGo }) {
  if (total <= PAGE) return html`<p class="muted pager">${count(total)} processes</p>`;
  return html`<p class="pager">
    <button disabled=${offset === 0} onClick=${() => onGo(Math.max(0, offset - PAGE))}>Previous</button>
    <span>${count(offset + 1)}–${count(Math.min(total, offset + PAGE))} of ${count(total)}</span>
    <button disabled=${offset + PAGE >= total} onClick=${() => onGo(offset + PAGE)}>Next</button></p>`;
}

function LiveTable({ data, live, sort, dir, onSort, picked, onTick }) {
  // The recorded list is in pid order only.
  const h = (id, label) => (live
    ? html`<${SortHeader} id=${id} label=${label} sort=${sort} dir=${dir} onSort=${onSort} numeric=${NUMERIC.has(id)} />`
    : html`<th>${label}</th>`);
  if (data.items.length === 0) return html`<p class="muted">No process matches.</p>`;
  return html`<table class="grid" data-testid="processes">
    <thead><tr><th></th>${h('pid', 'Pid')}${h('name', 'Name')}<th>Module</th>
      ${live && html`${h('mailbox', 'Mailbox')}${h('memory', 'Memory')}${h('reductions', 'Reductions')}<th>Status</th>`}
      ${!live && html`<th>Alive</th>`}<th class="num">Events</th><th class="num">States</th></tr></thead>
    <tbody>${data.items.map((r) => html`<tr key=${r.pid} data-pid=${r.pid}>
      <td><input type="checkbox" aria-label=${`pick ${r.pid}`} checked=${picked.includes(r.pid)} onChange=${() => onTick(r.pid)} /></td>
      <td><${Pid} pid=${r.pid} /></td><td>${r.name || ''}</td><td class="module">${r.module || ''}</td>
      ${live && html`<td class="num">${count(r.mailbox)}</td><td class="num">${bytes(r.memory)}</td>
        <td class="num">${count(r.reductions)}</td><td>${r.status}</td>`}
      ${!live && html`<td>${r.alive ? 'yes' : html`<span class=${r.crashed ? 'type type-crash' : 'muted'} title=${r.reason || ''}>${r.crashed ? 'crashed' : 'no'}</span>`}</td>`}
      <td class="num">${count(r.events)}</td>
      <td class="num">${r.states ? html`<a href=${href('states', r.pid)}>${count(r.states)}</a>` : '0'}</td>
    </tr>`)}</tbody></table>`;
}

function ExitedTable({ data, picked, onTick }) {
  if (data.items.length === 0) return html`<p class="muted">No exit recorded (exits are recorded for traced processes; <code>trace_all: true</code> traces all).</p>`;
  return html`<table class="grid" data-testid="exited">
    <thead><tr><th></th><th>Pid</th><th>Name</th><th>Module</th><th>When</th><th>Reason</th></tr></thead>
    <tbody>${data.items.map((r) => html`<tr key=${r.id} data-pid=${r.pid} class=${r.crashed ? 'crashed' : ''}>
      <td><input type="checkbox" aria-label=${`pick ${r.pid}`} checked=${picked.includes(r.pid)} onChange=${() => onTick(r.pid)} /></td>
      <td><${Pid} pid=${r.pid} /></td><td>${r.name || ''}</td><td class="module">${r.module || ''}</td>
      <td><${Time} ts=${r.ts} label=${`exit of ${r.pid}`} /></td>
      <td>${r.crashed && html`<span class="type type-crash">crash</span> `}<code>${r.reason}</code></td>
    </tr>`)}</tbody></table>`;
}
