// Phoenix: requests (method, path, status, duration) and, for one, everything its
// process did while serving it; LiveView processes and their mounts, events and
// renders with the assigns diffs between them.
import { html } from '../lib.js';
import { useApi } from '../api.js';
import { go, href } from '../router.js';
import { Time, durationText } from '../time.js';
import { TermInline, pathText } from '../term.js';
import { ErrorBox, EventRow, Loading, Pid, Tabs } from '../components.js';

export function Phoenix({ route }) {
  const p = route.params;
  const tab = p.tab || 'requests';
  return html`<section class="view phoenix">
    <h2>Phoenix</h2>
    <${Tabs} current=${tab} onPick=${(t) => go('phoenix', null, { tab: t })}
      tabs=${[['requests', 'Requests'], ['live_views', 'LiveViews']]} />
    ${tab === 'requests' ? (p.request ? html`<${Request} id=${p.request} />` : html`<${Requests} before=${p.before} />`)
    : (p.pid ? html`<${LiveView} pid=${p.pid} />` : html`<${LiveViews} />`)}
  </section>`;
}

const empty = html`<p class="muted">Nothing recorded: start ElixirScope with <code>phoenix: true</code> in a Phoenix application.</p>`;

function Requests({ before }) {
  const { data, error, loading } = useApi('phoenix/requests', { before, limit: 50 });
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return loading && html`<${Loading} />`;
  if (data.items.length === 0) return empty;
  return html`<table class="grid" data-testid="requests"><thead><tr><th>When</th><th>Method</th><th>Path</th><th class="num">Status</th>
    <th class="num">Duration</th><th>Route</th><th>Process</th></tr></thead>
    <tbody>${data.items.map((r) => html`<tr data-id=${r.id} class=${r.status >= 500 ? 'crashed' : ''}>
      <td><${Time} ts=${r.ts} label=${`${r.method} ${r.path}`} /></td><td>${r.method}</td>
      <td><a href=${href('phoenix', null, { tab: 'requests', request: r.id })}><code>${r.path}</code></a></td>
      <td class="num">${r.status}</td><td class="num">${durationText(r.duration)}</td><td><code>${r.route || ''}</code></td>
      <td><${Pid} pid=${r.pid} /></td></tr>`)}</tbody></table>
    ${data.next && html`<p><a class="button" href=${href('phoenix', null, { tab: 'requests', before: data.next })}>Older</a></p>`}`;
}

function Request({ id }) {
  const { data, error } = useApi('phoenix/request', { id });
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<${Loading} />`;
  const r = data.request;
  return html`<div data-testid="request">
    <p><a href=${href('phoenix', null, { tab: 'requests' })}>← all requests</a></p>
    <h3><code>${r.method} ${r.path}</code> → ${r.status} in ${durationText(r.duration)}</h3>
    <p>Served by <${Pid} pid=${r.pid} /> at <${Time} ts=${r.ts} /> ${r.route && html`— route <code>${r.route}</code>`}</p>
    <p>Params: <${TermInline} term=${r.params} width=${300} /></p>
    <table class="grid events"><tbody>${data.events.map((e) => html`<${EventRow} e=${e} />`)}</tbody></table>
  </div>`;
}

function LiveViews() {
  const { data, error, loading } = useApi('phoenix/live_views', { limit: 100 });
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return loading && html`<${Loading} />`;
  if (data.items.length === 0) return empty;
  return html`<table class="grid" data-testid="live-views"><thead><tr><th>Mounted</th><th>LiveView</th><th>Process</th><th>Connected</th><th>Alive</th></tr></thead>
    <tbody>${data.items.map((l) => html`<tr data-pid=${l.pid}><td><${Time} ts=${l.ts} /></td>
      <td><a href=${href('phoenix', null, { tab: 'live_views', pid: l.pid })}><code>${l.view}</code></a></td>
      <td><${Pid} pid=${l.pid} /></td><td>${l.connected ? 'yes' : 'no (HTTP render)'}</td><td>${l.alive ? 'yes' : 'no'}</td></tr>`)}</tbody></table>`;
}

function LiveView({ pid }) {
  const { data, error } = useApi('phoenix/live_view', { pid });
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<${Loading} />`;
  return html`<div data-testid="live-view">
    <p><a href=${href('phoenix', null, { tab: 'live_views' })}>← all LiveViews</a> — <${Pid} pid=${pid} />
      — <a href=${href('states', pid)}>states</a></p>
    <table class="grid events"><tbody>${data.events.map((e) => html`<tr class=${`ev ev-${e.type}`} data-id=${e.id}>
      <td class="t"><${Time} ts=${e.ts} /></td>
      <td><span class=${`type type-${e.type}`}>${e.type === 'phoenix' ? `${e.callback || e.kind} ${e.phase || ''}` : e.type}</span></td>
      <td>${e.event && html`<code>${e.event}</code> `}${e.duration && durationText(e.duration)}</td>
      <td>${e.diff ? html`<ul class="diff">${e.diff.map(([path, kind, old, neu]) => html`<li class=${`d-${kind}`}><code class="path">${pathText(path)}</code>
          ${kind === 'removed' ? html`removed <${TermInline} term=${old} width=${80} />` : kind === 'added' ? html`added <${TermInline} term=${neu} width=${80} />`
    : html`<${TermInline} term=${old} width=${60} /> → <${TermInline} term=${neu} width=${60} />`}</li>`)}</ul>`
    : html`<code class="muted">${e.summary}</code>`}</td></tr>`)}</tbody></table>
  </div>`;
}
