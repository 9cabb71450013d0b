// The live tail: new events as they arrive, by polling the API with a cursor (the
// server's :inets has no WebSocket, and short polls suit it). Never more than MAX rows
// in the page: the oldest go as new ones come. Pause stops polling; filters by type and
// process go to the server, the text filter applies to what is shown.
import { html, useEffect, useRef, useState } from '../lib.js';
import { get } from '../api.js';
import { go } from '../router.js';
import { EventDetail } from '../event.js';
import { ErrorBox, EventRow, count } from '../components.js';

const MAX = 1000;
const POLL_MS = 400;
const TYPES = ['send', 'receive', 'call', 'return', 'exception', 'state', 'spawn', 'exit', 'crash', 'phoenix'];

export function Tail({ route }) {
  const p = route.params;
  const types = (p.types || '').split(',').filter(Boolean);
  const [rows, setRows] = useState([]);
  const [paused, setPaused] = useState(false);
  const [error, setError] = useState(null);
  const [status, setStatus] = useState({ rate: 0, skipped: false });
  const [picked, setPicked] = useState(null);
  const [text, setText] = useState('');
  const cursor = useRef(null);
  const set = (changes) => go('tail', null, { ...p, ...changes });
  const filterKey = `${types.join(',')}|${p.pid || ''}`;

  // Filters changed: start again from the newest events.
  useEffect(() => { cursor.current = null; setRows([]); }, [filterKey]);

  useEffect(() => {
    if (paused) return undefined;
    let stop = false;
    let timer = null;
    let last = null;
    const poll = async () => {
      try {
        const t0 = performance.now();
        const r = await get('tail', { after: cursor.current, types: types.join(','), pid: p.pid, limit: MAX });
        if (stop) return;
        if (last) setStatus({ rate: ((r.newest - last.newest) * 1000) / (t0 - last.t), skipped: r.skipped });
        last = { newest: r.newest, t: t0 };
        cursor.current = r.cursor;
        if (r.items.length) setRows((old) => { const all = old.concat(r.items); return all.length > MAX ? all.slice(all.length - MAX) : all; });
        setError(null);
        const s = window.__scope;
        if (s) { s.tail = s.tail || { polls: 0 }; s.tail.polls += 1; s.tail.fetchMs = performance.now() - t0; }
      } catch (e) { if (!stop) setError(e); }
      if (!stop) timer = setTimeout(poll, POLL_MS);
    };
    poll();
    return () => { stop = true; clearTimeout(timer); };
  }, [paused, filterKey]);

  const shown = text ? rows.filter((e) => e.summary.includes(text) || e.type.includes(text) || (e.pid || '').includes(text)) : rows;
  const toggleType = (t) => set({ types: (types.includes(t) ? types.filter((x) => x !== t) : [...types, t]).join(',') });

  return html`<section class="view tail">
    <h2>Live tail</h2>
    <div class="toolbar">
      <button class=${paused ? 'on' : ''} onClick=${() => setPaused(!paused)} data-testid="pause">${paused ? 'Resume' : 'Pause'}</button>
      <span class="chips">${TYPES.map((t) => html`<button class=${`chip type type-${t}${types.includes(t) ? ' on' : ''}`}
        aria-pressed=${types.includes(t)} onClick=${() => toggleType(t)}>${t}</button>`)}</span>
      <input placeholder="pid <0.1.0>" value=${p.pid || ''} onChange=${(e) => set({ pid: e.currentTarget.value.trim() })} />
      <input type="search" placeholder="filter shown rows" value=${text} onInput=${(e) => setText(e.currentTarget.value)} />
    </div>
    <p class="muted status" data-testid="tail-status">${paused ? 'paused' : 'live'} — ${count(rows.length)} rows (at most ${MAX})
      — ~${count(Math.round(status.rate))} events/s stored${status.skipped ? ' — more than fit: showing the newest' : ''}</p>
    <${ErrorBox} error=${error} />
    <div class="with-detail">
      <table class="grid events" data-testid="tail"><tbody>${shown.map((e) => html`<${EventRow} key=${e.id} e=${e} onPick=${(ev) => setPicked(ev.id)} selected=${picked === e.id} />`)}</tbody></table>
      ${picked && html`<${EventDetail} id=${picked} onClose=${() => setPicked(null)} />`}
    </div>
  </section>`;
}
