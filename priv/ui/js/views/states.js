// A GenServer's state timeline: a slider over its recorded states (←/→ or j/k step,
// Home/End jump), each step with the callback and the message that produced it, the
// diff from the step before (computed in C) and the whole state as a tree. Steps
// next to the current one are fetched ahead, so stepping only re-renders.
import { html, useEffect, useLayoutEffect, useMemo, useRef, useState } from '../lib.js';
import { get, useApi } from '../api.js';
import { go, href } from '../router.js';
import { Time } from '../time.js';
import {
  TermInline, TermTree, diffPathKey, pathText, useExpanded,
} from '../term.js';
import { ErrorBox, Loading, Pid, bytes, count } from '../components.js';

const AHEAD = 3; // steps fetched ahead on each side
const KEEP = 40; // steps kept in the page

export function States({ route, meta }) {
  const pid = route.arg;
  if (!pid) return html`<${Pick} meta=${meta} />`;
  return html`<${Timeline} key=${pid} pid=${pid} route=${route} />`;
}

function Pick({ meta }) {
  const [text, setText] = useState('');
  const gens = (meta && meta.tracing && meta.tracing.genservers) || [];
  return html`<section class="view">
    <h2>State timeline</h2>
    <form class="toolbar" onSubmit=${(e) => { e.preventDefault(); go('states', text.trim()); }}>
      <input placeholder="<0.123.0>" value=${text} onInput=${(e) => setText(e.currentTarget.value)} />
      <button type="submit">Open</button></form>
    ${gens.length > 0 ? html`<p>Traced GenServers:</p><ul class="plain">${gens.map((p) => html`<li><a href=${href('states', p)}>${p}</a></li>`)}</ul>`
    : html`<p class="muted">No GenServer is traced now: open a process and trace it as a GenServer, or call <code>ElixirScope.trace_genserver/1</code>. The Processes view links every process with recorded states.</p>`}
  </section>`;
}

function Timeline({ pid, route }) {
  const [win, setWin] = useState({});
  const { data: index, error } = useApi('states', { pid, ...win });
  const ids = index ? index.ids : [];
  const wanted = Number(route.params.id) || null;
  const [current, setCurrent] = useState(wanted);
  useEffect(() => { if (wanted) setCurrent(wanted); }, [wanted]);
  const cache = useRef(new Map()); // id -> step data, or a pending promise
  const [, setTick] = useState(0);
  const [expanded, toggle] = useExpanded();
  const pending = useRef(null); // when a step was asked for (to time the re-render)

  // The id shown: the one in the URL, else the latest.
  const id = current && ids.includes(current) ? current : ids.length ? ids[ids.length - 1] : null;
  const at = ids.indexOf(id);

  // A step fetched ahead re-renders nothing; the one on screen does when it arrives.
  const shown = useRef(id);
  shown.current = id;
  const load = (sid) => {
    if (cache.current.has(sid)) return;
    const arrived = (d) => {
      cache.current.set(sid, d);
      if (sid === shown.current) setTick((t) => t + 1);
    };
    cache.current.set(sid, get('state', { pid, id: sid }).then(arrived, (e) => arrived({ error: e })));
  };

  useEffect(() => {
    if (at < 0) return;
    for (let d = 0; d <= AHEAD; d += 1) {
      if (ids[at + d]) load(ids[at + d]);
      if (ids[at - d]) load(ids[at - d]);
    }
    // Keep the page's memory flat: forget steps far from here.
    if (cache.current.size > KEEP) {
      for (const k of cache.current.keys()) {
        if (Math.abs(ids.indexOf(k) - at) > KEEP / 2) cache.current.delete(k);
      }
    }
  }, [id, index]);

  // Where the slider is: keys pressed faster than the page renders still add up.
  const position = useRef(at);
  position.current = at;

  const stepTo = (i) => {
    if (i < 0 || i >= ids.length || i === position.current) return;
    position.current = i;
    pending.current = performance.now();
    setCurrent(ids[i]);
    history.replaceState(null, '', href('states', pid, { id: ids[i] }));
  };

  useEffect(() => {
    const key = (e) => {
      if (e.target.closest && e.target.closest('input[type=text], input[type=search], textarea')) return;
      const moves = { ArrowLeft: -1, k: -1, ArrowRight: 1, j: 1 };
      if (e.key in moves) { e.preventDefault(); stepTo(position.current + moves[e.key]); }
      if (e.key === 'Home') { e.preventDefault(); stepTo(0); }
      if (e.key === 'End') { e.preventDefault(); stepTo(ids.length - 1); }
    };
    window.addEventListener('keydown', key);
    return () => window.removeEventListener('keydown', key);
  });

  const step = cache.current.get(id);
  const ready = step && !(step instanceof Promise) && !step.error;

  // How long stepping took to re-render, once the step's data was in the page.
  useLayoutEffect(() => {
    if (pending.current === null || !ready) return;
    const t0 = pending.current;
    pending.current = null;
    const commit = performance.now() - t0;
    // The next frame's callbacks run before its style, layout and paint; a message
    // posted from there arrives after them.
    requestAnimationFrame(() => {
      const frame = performance.now() - t0;
      const ch = new MessageChannel();
      ch.port1.onmessage = () => {
        const s = window.__scope;
        if (s) (s.stepRenders = s.stepRenders || []).push({ commit, frame, painted: performance.now() - t0, id });
      };
      ch.port2.postMessage(0);
    });
  }, [id, ready]);

  if (error) return html`<section class="view"><${ErrorBox} error=${error} /></section>`;
  if (!index) return html`<section class="view"><${Loading} what="Reading the timeline" /></section>`;
  if (ids.length === 0) {
    return html`<section class="view"><h2>States of <${Pid} pid=${pid} /></h2>
      <p class="muted">No state recorded for this process. Trace it as a GenServer (its page has the button, or <code>ElixirScope.trace_genserver/1</code>).</p></section>`;
  }

  return html`<section class="view states" data-pid=${pid}>
    <h2>States of <${Pid} pid=${pid} /> ${ready && step.module && html`<small>${step.module}</small>`}</h2>
    <div class="stepper">
      ${index.more_before && html`<button class="small" onClick=${() => setWin({ before: ids[0] })}>earlier</button>`}
      <button onClick=${() => stepTo(position.current - 1)} disabled=${at <= 0} aria-label="previous state">◀</button>
      <input type="range" class="slider" min="0" max=${ids.length - 1} value=${at} aria-label="state"
        onInput=${(e) => stepTo(Number(e.currentTarget.value))} />
      <button onClick=${() => stepTo(position.current + 1)} disabled=${at >= ids.length - 1} aria-label="next state">▶</button>
      ${index.more_after && html`<button class="small" onClick=${() => setWin({ after: ids[ids.length - 1] })}>later</button>`}
      <span class="position" data-testid="position">step ${at + 1} of ${ids.length}${index.total > ids.length ? html` <small>(${count(index.total)} recorded)</small>` : ''}</span>
      <span class="muted hint">←/→ or j/k</span>
    </div>
    ${!ready ? (step && step.error ? html`<${ErrorBox} error=${step.error} />` : html`<${Loading} what="Reading the state" />`)
    : html`<${Step} step=${step} expanded=${expanded} toggle=${toggle} />`}
  </section>`;
}

function Step({ step, expanded, toggle }) {
  const changes = useMemo(() => {
    const m = new Map();
    (step.diff || []).forEach(([path, kind]) => { if (kind !== 'removed') m.set(diffPathKey(path), kind); });
    return m;
  }, [step]);
  return html`<div class="step" data-id=${step.id}>
    <dl class="facts">
      <dt>When</dt><dd><${Time} ts=${step.ts} label=${`state #${step.id}`} /></dd>
      <dt>Callback</dt><dd><code data-testid="callback">${step.callback || 'initial'}</code></dd>
      <dt>Cause</dt><dd data-testid="cause">${step.callback ? html`<${TermInline} term=${step.cause} width=${300} />` : html`<span class="muted">the state when tracing began</span>`}</dd>
      <dt>Size</dt><dd>${bytes(step.size)}${step.truncated ? ' (truncated when stored)' : ''}</dd>
    </dl>
    <h3>Changes from the step before</h3>
    ${step.diff === null ? html`<p class="muted">The first state recorded.</p>`
    : step.diff.length === 0 ? html`<p class="muted">No change.</p>`
      : html`<ul class="diff" data-testid="diff">${step.diff.slice(0, 200).map(([path, kind, old, neu]) => html`<li class=${`d-${kind}`}>
          <code class="path">${pathText(path)}</code>
          ${kind === 'changed' && html`<${TermInline} term=${old} width=${120} /> → <${TermInline} term=${neu} width=${120} />`}
          ${kind === 'added' && html`added <${TermInline} term=${neu} width=${160} />`}
          ${kind === 'removed' && html`removed <${TermInline} term=${old} width=${160} />`}
        </li>`)}${step.diff.length > 200 ? html`<li class="muted">… ${step.diff.length - 200} more</li>` : ''}</ul>`}
    <h3>State</h3>
    <${TermTree} term=${step.state} expanded=${expanded} onToggle=${toggle} changes=${changes} openDepth=${3} />
  </div>`;
}
