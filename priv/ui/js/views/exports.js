// Exports of a selection (processes, a time window): a Chrome trace to open in
// Perfetto or chrome://tracing, and a Mermaid sequence diagram of the messages.
import { html, useState } from '../lib.js';
import { apiUrl } from '../api.js';
import { go } from '../router.js';
import { Time } from '../time.js';
import { ErrorBox } from '../components.js';

export function Exports({ route }) {
  const p = route.params;
  const [pids, setPids] = useState(p.pids || '');
  const [mermaid, setMermaid] = useState(null);
  const [error, setError] = useState(null);
  const sel = { pids: p.pids, from: p.from, to: p.to };
  const apply = (e) => { e.preventDefault(); go('exports', null, { ...p, pids: pids.replace(/\s+/g, '') }); setMermaid(null); };
  const showMermaid = async () => {
    setError(null);
    try {
      const r = await fetch(apiUrl('export/mermaid', sel), { credentials: 'same-origin' });
      if (!r.ok) throw new Error((await r.json()).error);
      setMermaid(await r.text());
    } catch (e) { setError(e); }
  };
  return html`<section class="view exports">
    <h2>Exports</h2>
    <form class="toolbar" onSubmit=${apply}>
      <label>Processes <input size="60" placeholder="all, or <0.1.0>,<0.2.0>" value=${pids} onInput=${(e) => setPids(e.currentTarget.value)} /></label>
      <button type="submit">Select</button></form>
    <p class="muted">Selection: ${p.pids ? p.pids.split(',').length : 'all'} process(es)${p.from ? html`, from <${Time} ts=${p.from} /> to <${Time} ts=${p.to} />` : ', the whole recording'}.
      (The Messages view hands its window here through its "export" link.)</p>
    <div class="cards">
      <div class="card"><h3>Chrome trace (Perfetto)</h3>
        <p>Calls as slices, messages as arrows, states and crashes as instants: one track per process.</p>
        <p><a class="button" href=${apiUrl('export/chrome', sel)} download="elixir_scope_trace.json" data-testid="chrome-link">Download trace.json</a></p>
        <p class="muted">Open it at <code>ui.perfetto.dev</code> ("Open trace file") or in <code>chrome://tracing</code>. Nothing is sent anywhere: the file stays on your machine until you open it.</p></div>
      <div class="card"><h3>Mermaid sequence diagram</h3>
        <p>The messages between the selected processes (or the busiest ones).</p>
        <p><button onClick=${showMermaid} data-testid="mermaid-show">Show</button>
          <a class="button" href=${apiUrl('export/mermaid', sel)} download="elixir_scope_messages.mmd">Download .mmd</a></p>
        <${ErrorBox} error=${error} />
        ${mermaid && html`<pre class="mermaid-text" data-testid="mermaid">${mermaid}</pre>`}</div>
    </div>
  </section>`;
}
