// The page: reads /api/meta (which recording, the clock, the CSRF token), then draws
// the header and the view the URL names.
import { html, render, useEffect, useState } from './lib.js';
import { get, selectNode, setCsrf } from './api.js';
import { href, useRoute } from './router.js';
import { AnchorBar, setClock } from './time.js';
import { count } from './components.js';
import { Processes } from './views/processes.js';

window.__scope = window.__scope || {};

// The first page people open comes with the page; the other views load when first
// opened, so that opening the UI asks the server for a dozen files, not two dozen.
const VIEWS = {
  processes: () => Promise.resolve(Processes),
  process: () => import('./views/process.js').then((m) => m.Process),
  states: () => import('./views/states.js').then((m) => m.States),
  messages: () => import('./views/messages.js').then((m) => m.Messages),
  calls: () => import('./views/calls.js').then((m) => m.Calls),
  crashes: () => import('./views/crashes.js').then((m) => m.Crashes),
  phoenix: () => import('./views/phoenix.js').then((m) => m.Phoenix),
  tail: () => import('./views/tail.js').then((m) => m.Tail),
  exports: () => import('./views/exports.js').then((m) => m.Exports),
  event: () => import('./views/event_view.js').then((m) => m.Event),
};
const loaded = { processes: Processes };

// The component of a view, once its module is loaded (null until then).
function useView(name) {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!loaded[name] && VIEWS[name]) {
      VIEWS[name]().then((view) => {
        loaded[name] = view;
        setTick((t) => t + 1);
      });
    }
  }, [name]);
  return loaded[name] || null;
}

const NAV = [
  ['processes', 'Processes'], ['states', 'States'], ['messages', 'Messages'], ['calls', 'Calls'],
  ['crashes', 'Crashes'], ['phoenix', 'Phoenix'], ['tail', 'Live tail'], ['exports', 'Exports'],
];

// /api/meta: read once at start (with the clock and the CSRF token), and every 5 s in
// a live session, where the header's counts follow the store. The views draw before
// it arrives (the processes view asks for its rows at once).
function useMeta() {
  const [meta, setMeta] = useState(null);
  useEffect(() => {
    let timer = null;
    const read = () => get('meta').then((m) => {
      setCsrf(m.csrf);
      setClock(m.clock, m.recording && m.recording.first);
      setMeta(m);
      if (m.mode === 'live') timer = setTimeout(read, 5000);
    }, () => { timer = setTimeout(read, 5000); });
    read();
    return () => clearTimeout(timer);
  }, []);
  return meta;
}

function Header({ meta, view }) {
  if (!meta) return html`<header class="top"><div class="brand"><a href="#/processes">ElixirScope</a></div></header>`;
  const where = meta.mode === 'live'
    ? html`<span class="badge ok">live</span> ${meta.nodes && meta.nodes.length > 1
      ? html`<select data-testid="node" title="the node whose recording is shown" onChange=${(e) => selectNode(e.target.value)}>
          ${meta.nodes.map((n) => html`<option value=${n} selected=${n === meta.node}>${n}</option>`)}
        </select>`
      : html`<span>${meta.node}</span>`}`
    : html`<span class="badge rec">recording</span> <span data-testid="recording" title=${meta.recording.path}>${meta.recording.path}</span>`;
  return html`<header class="top">
    <div class="brand"><a href="#/processes">ElixirScope</a> ${where}
      ${meta.store && html`<span class="muted">${count(meta.store.stored)} events</span>`}
      ${meta.mode === 'live' && !meta.tracing && html`<span class="badge dead">not tracing</span>`}
      ${meta.mode === 'recording' && meta.clock.offset === null && html`<span class="muted" title="this recording noted no time offset: times are offsets from its start">no wall clock</span>`}
    </div>
    <nav class="main">${NAV.map(([id, label]) => html`<a href=${href(id)} class=${id === view ? 'on' : ''}>${label}</a>`)}</nav>
    <${AnchorBar} />
  </header>`;
}

function App() {
  const meta = useMeta();
  const route = useRoute();
  const View = useView(route.view);
  let body = html`<p class="muted loading">Loading…</p>`;
  if (View) body = html`<${View} route=${route} meta=${meta} />`;
  else if (!VIEWS[route.view]) body = html`<p class="error">No view "${route.view}".</p>`;
  return html`<${Header} meta=${meta} view=${route.view} />
    <main>${body}</main>`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
