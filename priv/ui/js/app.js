// The page: reads /api/meta (which recording, the clock, the CSRF token), then draws
// the header and the view the URL names.
import { html, render, useEffect, useState } from './lib.js';
import { get, setCsrf } from './api.js';
import { href, useRoute } from './router.js';
import { AnchorBar, setClock } from './time.js';
import { count } from './components.js';
import { Processes } from './views/processes.js';
import { Process } from './views/process.js';
import { States } from './views/states.js';
import { Messages } from './views/messages.js';
import { Calls } from './views/calls.js';
import { Crashes } from './views/crashes.js';
import { Phoenix } from './views/phoenix.js';
import { Tail } from './views/tail.js';
import { Exports } from './views/exports.js';
import { Event } from './views/event_view.js';

window.__scope = window.__scope || {};

const VIEWS = {
  processes: Processes,
  process: Process,
  states: States,
  messages: Messages,
  calls: Calls,
  crashes: Crashes,
  phoenix: Phoenix,
  tail: Tail,
  exports: Exports,
  event: Event,
};

const NAV = [
  ['processes', 'Processes'], ['states', 'States'], ['messages', 'Messages'], ['calls', 'Calls'],
  ['crashes', 'Crashes'], ['phoenix', 'Phoenix'], ['tail', 'Live tail'], ['exports', 'Exports'],
];

// In a live session the header's counts follow the store.
function useMeta(first) {
  const [meta, setMeta] = useState(first);
  useEffect(() => {
    if (first.mode !== 'live') return undefined;
    const t = setInterval(() => get('meta').then(setMeta, () => {}), 5000);
    return () => clearInterval(t);
  }, []);
  return meta;
}

function Header({ meta, view }) {
  const where = meta.mode === 'live'
    ? html`<span class="badge ok">live</span> <span>${meta.node}</span>`
    : html`<span class="badge rec">recording</span> <span data-testid="recording" title=${meta.recording.path}>${meta.recording.path}</span>`;
  return html`<header class="top">
    <div class="brand"><a href="#/processes">ElixirScope</a> ${where}
      ${meta.store && html`<span class="muted">${count(meta.store.stored)} events</span>`}
      ${meta.mode === 'live' && !meta.tracing && html`<span class="badge dead">not tracing</span>`}
      ${meta.mode === 'recording' && meta.clock.offset === null && html`<span class="muted" title="this recording has no clock event: times are offsets from its start">no wall clock</span>`}
    </div>
    <nav class="main">${NAV.map(([id, label]) => html`<a href=${href(id)} class=${id === view ? 'on' : ''}>${label}</a>`)}</nav>
    <${AnchorBar} />
  </header>`;
}

function App({ first }) {
  const meta = useMeta(first);
  const route = useRoute();
  const View = VIEWS[route.view];
  return html`${html`<${Header} meta=${meta} view=${route.view} />`}
    <main>${View ? html`<${View} route=${route} meta=${meta} />` : html`<p class="error">No view "${route.view}".</p>`}</main>`;
}

async function start() {
  const root = document.getElementById('app');
  try {
    const meta = await get('meta');
    setCsrf(meta.csrf);
    setClock(meta.clock, meta.recording && meta.recording.first);
    root.textContent = '';
    render(html`<${App} first=${meta} />`, root);
  } catch (e) {
    root.textContent = `ElixirScope could not start: ${e.message}`;
  }
}

start();
