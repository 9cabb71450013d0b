// One process: what it is now (when alive), what was recorded about it, whom it
// talked with, and the way to its states, messages and calls; the tracing actions.
import { html, useState } from '../lib.js';
import { post, useApi } from '../api.js';
import { href } from '../router.js';
import { Time } from '../time.js';
import { ErrorBox, Loading, Pid, bytes, count } from '../components.js';

export function Process({ route, meta }) {
  const pid = route.arg;
  const [version, setVersion] = useState(0);
  const { data, error } = useApi('process', { pid }, `${pid}/${version}`);
  if (error) return html`<section class="view"><${ErrorBox} error=${error} /></section>`;
  if (!data) return html`<section class="view"><${Loading} /></section>`;
  const h = data.history;
  return html`<section class="view process" data-pid=${pid}>
    <h2>${data.name ? html`${data.name} <small>${data.pid}</small>` : data.pid}
      <span class=${`badge ${data.alive ? 'ok' : 'dead'}`}>${data.alive ? 'alive' : 'not running'}</span></h2>
    <p class="muted">${data.module || ''}</p>
    <nav class="links">
      <a class="button" href=${href('states', pid)}>States (${count(h.by_type.state || 0)})</a>
      <a class="button" href=${href('messages', null, { pids: pid })}>Messages</a>
      <a class="button" href=${href('calls', null, { pid })}>Calls (${count(h.by_type.call || 0)})</a>
      <a class="button" href=${href('tail', null, { pid })}>Live tail</a>
      <a class="button" href=${href('exports', null, { pids: pid })}>Export</a>
    </nav>
    ${meta && meta.mode === 'live' && html`<${Actions} data=${data} onDone=${() => setVersion((v) => v + 1)} />`}
    <div class="cards">
      ${data.live && html`<div class="card"><h3>Now</h3><dl>
        <dt>Status</dt><dd>${data.live.status}</dd>
        <dt>Mailbox</dt><dd>${count(data.live.mailbox)}</dd>
        <dt>Memory</dt><dd>${bytes(data.live.memory)}</dd>
        <dt>Reductions</dt><dd>${count(data.live.reductions)}</dd>
        <dt>Current</dt><dd><code>${data.live.current}</code></dd>
        <dt>Parent</dt><dd><${Pid} pid=${data.live.parent} /></dd>
        <dt>Links</dt><dd>${data.live.links.length ? data.live.links.map((l) => html`<${Pid} pid=${l} /> `) : '—'}</dd>
      </dl></div>`}
      <div class="card"><h3>Recorded</h3><dl>
        <dt>Events</dt><dd>${count(h.events)}</dd>
        <dt>First</dt><dd><${Time} ts=${h.first} /></dd>
        <dt>Last</dt><dd><${Time} ts=${h.last} /></dd>
        <dt>By type</dt><dd>${Object.entries(h.by_type).sort().map(([t, n]) => html`<span class=${`type type-${t}`}>${t} ${count(n)}</span> `)}</dd>
        ${data.parent && html`<dt>Parent</dt><dd><${Pid} pid=${data.parent} /></dd>`}
      </dl></div>
      ${data.crash && html`<div class="card crash"><h3>Crashed <${Time} ts=${data.crash.ts} /></h3>
        <pre>${data.crash.reason}</pre><a href=${href('crashes')}>All crashes</a></div>`}
      ${data.peers.length > 0 && html`<div class="card"><h3>Talked with</h3><ul class="plain">
        ${data.peers.map((p) => html`<li><${Pid} pid=${p.pid} /> ${count(p.messages)} messages
          — <a href=${href('messages', null, { pids: `${pid},${p.pid}` })}>diagram</a></li>`)}</ul></div>`}
    </div>
  </section>`;
}

// Trace or stop tracing: POSTs with the page's CSRF token.
function Actions({ data, onDone }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  if (!data.tracing) return html`<p class="muted">ElixirScope is not tracing: no tracing actions.</p>`;
  const act = async (action) => {
    setBusy(true); setError(null);
    try { await post('trace', { action, pid: data.pid }); onDone(); } catch (e) { setError(e); }
    setBusy(false);
  };
  return html`<div class="actions">
    ${!data.traced && data.alive && html`<button disabled=${busy} onClick=${() => act('trace_process')}>Trace this process</button>`}
    ${!data.genserver && data.alive && html`<button disabled=${busy} onClick=${() => act('trace_genserver')}>Trace as a GenServer (states)</button>`}
    ${data.traced && html`<button disabled=${busy} onClick=${() => act('untrace_process')}>Stop tracing it</button>`}
    ${data.traced && html`<span class="badge ok">traced</span>`}
    <${ErrorBox} error=${error} />
  </div>`;
}
