// Crashes, newest first: the reason and its stacktrace, the process's last recorded
// states and the last messages it received before dying.
import { html } from '../lib.js';
import { useApi } from '../api.js';
import { href } from '../router.js';
import { Time } from '../time.js';
import { ErrorBox, Loading, Pid } from '../components.js';

export function Crashes({ route }) {
  const before = route.params.before;
  const { data, error, loading } = useApi('crashes', { before, limit: 10 });
  return html`<section class="view crashes">
    <h2>Crashes</h2>
    <${ErrorBox} error=${error} />
    ${!data && loading && html`<${Loading} what="Reading crashes" />`}
    ${data && data.items.length === 0 && html`<p class="muted">No crash recorded${before ? ' before this one' : ''}. Crashes are recorded for traced processes (<code>trace_all: true</code> traces every process).</p>`}
    ${data && data.items.map((c) => html`<article class="card crash" data-id=${c.id} data-pid=${c.pid}>
      <h3><${Pid} pid=${c.pid} name=${c.name} /> crashed <${Time} ts=${c.ts} label=${`crash of ${c.pid}`} /></h3>
      <pre class="reason" data-testid="reason">${c.reason}</pre>
      ${c.stacktrace && html`<details open><summary>Stacktrace</summary><pre class="stack">${c.stacktrace.join('\n')}</pre></details>`}
      <div class="two">
        <div><h4>Last states</h4>${c.last_states.length === 0 ? html`<p class="muted">none recorded</p>`
    : html`<ul class="plain">${c.last_states.map((s) => html`<li><${Time} ts=${s.ts} /> <code>${s.callback || 'initial'}</code>
            <a href=${href('states', c.pid, { id: s.id })}>open</a><br /><code class="term">${s.state}</code></li>`)}</ul>`}</div>
        <div><h4>Last messages received</h4>${c.last_messages.length === 0 ? html`<p class="muted">none recorded</p>`
    : html`<ul class="plain">${c.last_messages.map((m) => html`<li><${Time} ts=${m.ts} /> <code>${m.summary}</code></li>`)}</ul>`}</div>
      </div>
    </article>`)}
    ${data && data.next && html`<p><a class="button" href=${href('crashes', null, { before: data.next })}>Older crashes</a></p>`}
  </section>`;
}
