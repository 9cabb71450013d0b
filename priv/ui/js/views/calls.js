// Calls: a process's traced calls over a window as an icicle (time across, nesting
// down) and as a tree with durations; click a call to see its arguments and result
// whole. Below, per-function latency of a module (calls, p50/p90/p99, max,
// exceptions) and its slowest calls.
import { html, useState } from '../lib.js';
import { post, useApi } from '../api.js';
import { go, href } from '../router.js';
import { Time, durationText, micros } from '../time.js';
import { TermTree, useExpanded } from '../term.js';
import { ErrorBox, Loading, Pid, count } from '../components.js';

export function Calls({ route, meta }) {
  const p = route.params;
  const set = (changes) => go('calls', null, { ...p, ...changes });
  const [text, setText] = useState(p.pid || '');
  return html`<section class="view calls">
    <h2>Calls</h2>
    <form class="toolbar" onSubmit=${(e) => { e.preventDefault(); set({ pid: text.trim(), call: null, from: null, to: null }); }}>
      <label>Process <input placeholder="<0.123.0>" value=${text} onInput=${(e) => setText(e.currentTarget.value)} /></label>
      <button type="submit">Show calls</button></form>
    ${p.pid && html`<${Tree} pid=${p.pid} params=${p} set=${set} />`}
    <${Latency} module=${p.module} set=${set} meta=${meta} />
  </section>`;
}

function Tree({ pid, params, set }) {
  const { data, error, loading } = useApi('calls', { pid, from: params.from, to: params.to });
  const picked = params.call ? Number(params.call) : null;
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return loading ? html`<${Loading} what="Reading calls" />` : null;
  if (data.roots.length === 0) {
    return html`<p class="muted">No call recorded for <${Pid} pid=${pid} />. Trace a module (below, or <code>ElixirScope.trace_module/1</code>); its calls are recorded in every process.</p>`;
  }
  const pick = (node) => set({ call: node.id, end: node.duration ? (BigInt(node.ts) + BigInt(node.duration)).toString() : null });
  return html`<div class="calltree">
    <p class="muted">Calls of <${Pid} pid=${pid} /> from <${Time} ts=${data.from} />${data.to ? html` to <${Time} ts=${data.to} />` : ''}
      ${data.more && (params.from ? ' — cut to the first calls of the window' : ' — the latest calls')}
      ${' '}<button class="small" onClick=${() => set({ from: null, to: (BigInt(data.from) - 1n).toString(), call: null })}>earlier calls</button>
      ${(params.from || params.to) && html` <button class="small" onClick=${() => set({ from: null, to: null, call: null })}>latest</button>`}</p>
    <${Icicle} roots=${data.roots} picked=${picked} onPick=${pick} />
    <div class="with-detail">
      <ul class="tree-list" data-testid="call-tree">${data.roots.map((n) => html`<${Node} n=${n} picked=${picked} onPick=${pick} depth=${0} />`)}</ul>
      ${picked && html`<${CallDetail} id=${picked} end=${params.end} onClose=${() => set({ call: null, end: null })} />`}
    </div>
  </div>`;
}

// Nesting down, time across: each call a bar as long as it took. "Gaps removed" lays
// the top-level calls side by side (the time between them left out), so that short
// calls far apart stay visible; "real time" keeps the time axis.
function Icicle({ roots, picked, onPick }) {
  const [real, setReal] = useState(false);
  const W = 1000;
  const H = 20;
  const MIN = 2;
  const dur = (n) => (n.duration ? micros(n.duration) : 0);
  const origin = BigInt(roots[0].ts);
  // Where each root starts, in µs along the axis.
  let at = 0;
  const starts = roots.map((r) => {
    const x = real ? micros(BigInt(r.ts) - origin) : at;
    at += dur(r);
    return x;
  });
  const span = Math.max(...roots.map((r, i) => starts[i] + dur(r)), 1e-3);
  const scale = (W - MIN * (real ? 0 : roots.length)) / span;
  const bars = [];
  let depth = 0;
  const walk = (n, x0, d) => {
    depth = Math.max(depth, d);
    const w = Math.max(dur(n) * scale, 1);
    bars.push({ n, x: x0, w, d });
    n.children.forEach((c) => walk(c, x0 + micros(BigInt(c.ts) - BigInt(n.ts)) * scale, d + 1));
  };
  roots.forEach((r, i) => walk(r, starts[i] * scale + (real ? 0 : i * MIN), 0));
  return html`<div class="icicle-box">
    <div class="toolbar"><span class="muted">${roots.length} top-level call${roots.length === 1 ? '' : 's'}</span>
      <button class=${real ? '' : 'on'} onClick=${() => setReal(false)}>gaps removed</button>
      <button class=${real ? 'on' : ''} onClick=${() => setReal(true)}>real time</button></div>
    <svg class="icicle" viewBox=${`0 0 ${W} ${(depth + 1) * H}`} width="100%" data-testid="icicle">
    ${bars.map(({ n, x, w, d }) => html`<g class=${`bar${n.exception ? ' exc' : ''}${picked === n.id ? ' picked' : ''}`} data-id=${n.id} onClick=${() => onPick(n)}>
      <rect x=${x} y=${d * H} width=${w} height=${H - 2} />
      ${w > 70 && html`<text x=${x + 3} y=${d * H + 14}>${n.mfa}</text>`}
      <title>${n.mfa} ${durationText(n.duration)}</title></g>`)}
  </svg></div>`;
}

function Node({ n, picked, onPick, depth }) {
  const [open, setOpen] = useState(depth < 2);
  return html`<li>
    <div class=${`call${picked === n.id ? ' picked' : ''}${n.exception ? ' exc' : ''}`} data-id=${n.id}>
      ${n.children.length > 0 ? html`<button class="twisty" onClick=${() => setOpen(!open)}>${open ? '▾' : '▸'}</button>` : html`<span class="twisty"></span>`}
      <button class="link" onClick=${() => onPick(n)}><code>${n.mfa}</code></button>
      <span class="dur">${durationText(n.duration)}</span>
      <code class="muted">(${n.args.replace(/^\[|\]$/g, '')}) → ${n.result}</code>
    </div>
    ${open && n.children.length > 0 && html`<ul>${n.children.map((c) => html`<${Node} n=${c} picked=${picked} onPick=${onPick} depth=${depth + 1} />`)}</ul>`}
  </li>`;
}

function CallDetail({ id, end, onClose }) {
  const { data, error } = useApi('call', { id, to: end });
  const [ea, ta] = useExpanded();
  const [er, tr] = useExpanded();
  return html`<aside class="detail" data-testid="call-detail">
    <header><b>#${id}</b> ${data && html`<code>${data.mfa}</code>`}<button class="small close" onClick=${onClose} aria-label="close">✕</button></header>
    <${ErrorBox} error=${error} />
    ${!data && !error && html`<${Loading} />`}
    ${data && html`<dl class="facts"><dt>When</dt><dd><${Time} ts=${data.ts} label=${`call #${id}`} /></dd>
        <dt>Took</dt><dd data-testid="call-duration">${durationText(data.duration)}</dd>
        <dt>Process</dt><dd><${Pid} pid=${data.pid} /></dd>
        <dt>Calls inside</dt><dd>${data.calls_inside ?? '—'}</dd></dl>
      <h4>Arguments</h4><${TermTree} term=${data.args} expanded=${ea} onToggle=${ta} openDepth=${2} height=${220} />
      ${data.outcome && 'result' in data.outcome && html`<h4>Result</h4><${TermTree} term=${data.outcome.result} expanded=${er} onToggle=${tr} openDepth=${2} height=${220} />`}
      ${data.outcome && 'class' in data.outcome && html`<h4>Raised (${data.outcome.class})</h4><${TermTree} term=${data.outcome.reason} expanded=${er} onToggle=${tr} openDepth=${2} height=${220} />`}
      ${data.outcome && data.outcome.running && html`<p class="muted">Still running (no return recorded).</p>`}`}
  </aside>`;
}

function Latency({ module, set, meta }) {
  const { data: mods } = useApi('modules', {});
  const { data, error } = useApi(module ? 'performance' : null, { module });
  const { data: slow } = useApi(module ? 'slowest' : null, { module, limit: 10 });
  const [text, setText] = useState('');
  const [msg, setMsg] = useState(null);
  const trace = async () => {
    try { await post('trace', { action: 'trace_module', module: text.trim() }); setMsg(`Tracing ${text.trim()}`); } catch (e) { setMsg(e.message); }
  };
  return html`<div class="latency">
    <h3>Latency by function</h3>
    <div class="toolbar">
      <label>Module <select value=${module || ''} onChange=${(e) => set({ module: e.currentTarget.value })}>
        <option value="">—</option>
        ${mods && mods.modules.map((m) => html`<option value=${m}>${m}</option>`)}</select></label>
      ${meta && meta.mode === 'live' && meta.tracing && html`<form onSubmit=${(e) => { e.preventDefault(); trace(); }}>
        <input placeholder="MyApp.Module" value=${text} onInput=${(e) => setText(e.currentTarget.value)} />
        <button type="submit">Trace module</button> ${msg && html`<span class="muted">${msg}</span>`}</form>`}
    </div>
    <${ErrorBox} error=${error} />
    ${data && (data.functions.length === 0 ? html`<p class="muted">No call of ${data.module} recorded.</p>`
    : html`<table class="grid" data-testid="latency"><thead><tr><th>Function</th><th class="num">Calls</th><th class="num">Exceptions</th>
        <th class="num">p50</th><th class="num">p90</th><th class="num">p99</th><th class="num">Max</th><th class="num">Total</th></tr></thead>
        <tbody>${data.functions.map((f) => html`<tr data-function=${f.function}><td><code>${f.function}</code></td><td class="num">${count(f.calls)}</td>
          <td class="num">${count(f.exceptions)}</td><td class="num">${durationText(f.p50)}</td><td class="num">${durationText(f.p90)}</td>
          <td class="num">${durationText(f.p99)}</td><td class="num">${durationText(f.max)}</td><td class="num">${durationText(f.total)}</td></tr>`)}</tbody></table>`)}
    ${slow && slow.calls.length > 0 && html`<h3>Slowest calls</h3><table class="grid"><tbody>${slow.calls.map((c) => html`<tr>
        <td class="num">${durationText(c.duration)}</td><td><code>${c.mfa}</code></td><td><${Pid} pid=${c.pid} /></td>
        <td><a href=${href('calls', null, { pid: c.pid, module, call: c.id })}>open</a></td><td><code class="muted">${c.args} → ${c.result}</code></td></tr>`)}</tbody></table>`}
  </div>`;
}
