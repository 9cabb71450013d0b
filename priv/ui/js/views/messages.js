// Messages among chosen processes as a sequence diagram: a lane per process, an arrow
// per message from sender to receiver (with its delivery time when the receiver is
// traced), exits and crashes marked on their lane. The strip above shows how messages
// spread over time: drag on it to look at a window. Click a message to see it whole.
import { html, useRef, useState } from '../lib.js';
import { useApi } from '../api.js';
import { go, href } from '../router.js';
import { Time, durationText, wallText } from '../time.js';
import { EventDetail } from '../event.js';
import { ErrorBox, Loading, Pid } from '../components.js';

const ROW = 26;
const LEFT = 190;
const LANE = 240;

export function Messages({ route }) {
  const p = route.params;
  const pids = (p.pids || '').split(',').filter(Boolean);
  const [picked, setPicked] = useState(null);
  const set = (changes) => go('messages', null, { ...p, ...changes });
  const { data, error, loading } = useApi(pids.length ? 'messages' : null, {
    pids: pids.join(','), from: p.from, to: p.to, overview: 1,
  });

  return html`<section class="view messages">
    <h2>Messages</h2>
    <${Picker} pids=${pids} onChange=${(ps) => set({ pids: ps.join(','), from: null, to: null })} />
    <${ErrorBox} error=${error} />
    ${pids.length === 0 && html`<p class="muted">Pick processes: type pids above, or tick rows in Processes.</p>`}
    ${pids.length > 0 && !data && loading && html`<${Loading} what="Reading messages" />`}
    ${data && html`
      ${data.overview && html`<${Overview} o=${data.overview} from=${p.from} to=${p.to}
        onBrush=${(from, to) => set({ from, to })} onReset=${() => set({ from: null, to: null })} />`}
      <p class="muted">${data.messages.length} message${data.messages.length === 1 ? '' : 's'}
        ${data.from && html` from <${Time} ts=${data.from} /> to <${Time} ts=${data.to} />`}
        ${data.more && ' — more in this window than shown: drag a narrower window above'}
        — <a href=${href('exports', null, { pids: pids.join(','), from: p.from, to: p.to })}>export</a></p>
      <div class="with-detail">
        <${Diagram} data=${data} picked=${picked} onPick=${setPicked} />
        ${picked && html`<${EventDetail} id=${picked} onClose=${() => setPicked(null)} />`}
      </div>`}
  </section>`;
}

function Picker({ pids, onChange }) {
  const [text, setText] = useState('');
  const first = pids[0];
  const { data: peers } = useApi(first ? 'peers' : null, { pid: first });
  const add = (pid) => { if (pid && !pids.includes(pid)) onChange([...pids, pid]); };
  return html`<div class="picker">
    ${pids.map((pid) => html`<span class="chip"><${Pid} pid=${pid} />
      <button class="small" aria-label=${`remove ${pid}`} onClick=${() => onChange(pids.filter((x) => x !== pid))}>✕</button></span>`)}
    <form onSubmit=${(e) => { e.preventDefault(); text.split(',').map((s) => s.trim()).forEach(add); setText(''); }}>
      <input placeholder="add a pid: <0.123.0>" value=${text} onInput=${(e) => setText(e.currentTarget.value)} />
      <button type="submit">Add</button></form>
    ${peers && peers.peers.filter((x) => !pids.includes(x.pid)).length > 0 && html`<div class="suggest muted">talked with ${first}:
      ${peers.peers.filter((x) => !pids.includes(x.pid)).slice(0, 8).map((x) => html`
        <button class="small" onClick=${() => add(x.pid)}>+ ${x.name || x.pid} (${x.messages})</button>`)}</div>`}
  </div>`;
}

// The density strip: bars of message counts over time; drag to choose a window.
function Overview({ o, from, to, onBrush, onReset }) {
  const W = 1000;
  const H = 44;
  const svg = useRef(null);
  const [drag, setDrag] = useState(null);
  const max = Math.max(...o.counts, 1);
  const bw = W / o.counts.length;
  const low = BigInt(o.from);
  const span = BigInt(o.to) - low + 1n;
  const xOf = (ts) => Math.min(W, Math.max(0, Number(((BigInt(ts) - low) * 10000n) / span) / 10000 * W));
  const tsOf = (x) => (low + (span * BigInt(Math.round((x / W) * 10000))) / 10000n).toString();
  const at = (e) => {
    const r = svg.current.getBoundingClientRect();
    return Math.min(W, Math.max(0, ((e.clientX - r.left) / r.width) * W));
  };
  const down = (e) => { e.currentTarget.setPointerCapture(e.pointerId); setDrag([at(e), at(e)]); };
  const move = (e) => { if (drag) setDrag([drag[0], at(e)]); };
  const up = () => {
    if (drag && Math.abs(drag[1] - drag[0]) > 3) {
      const [a, b] = [Math.min(...drag), Math.max(...drag)];
      onBrush(tsOf(a), tsOf(b));
    }
    setDrag(null);
  };
  const sel = drag ? [Math.min(...drag), Math.max(...drag)] : from && to ? [xOf(from), xOf(to)] : null;
  return html`<div class="overview">
    <svg ref=${svg} viewBox=${`0 0 ${W} ${H}`} preserveAspectRatio="none" class="strip" data-testid="overview"
      onPointerDown=${down} onPointerMove=${move} onPointerUp=${up}>
      ${o.counts.map((c, i) => c > 0 && html`<rect class="bar" x=${i * bw} width=${Math.max(bw - 1, 1)} y=${H - (c / max) * H} height=${(c / max) * H} />`)}
      ${sel && html`<rect class="brush" x=${sel[0]} width=${Math.max(sel[1] - sel[0], 1)} y="0" height=${H} />`}
    </svg>
    <div class="strip-axis"><span>${wallText(o.from)}</span><span class="muted">drag to pick a window${o.sampled ? ' (the latest messages)' : ''}</span>
      ${from && html`<button class="small" onClick=${onReset}>whole range</button>`}<span>${wallText(o.to)}</span></div>
  </div>`;
}

function Diagram({ data, picked, onPick }) {
  const lanes = data.lanes;
  const x = new Map(lanes.map((l, i) => [l.pid, LEFT + LANE / 2 + i * LANE]));
  const items = [
    ...data.messages.map((m) => ({ kind: 'msg', ts: m.ts, id: m.id, m })),
    ...data.marks.map((m) => ({ kind: 'mark', ts: m.ts, id: m.id, m })),
  ].sort((a, b) => (BigInt(a.ts) < BigInt(b.ts) ? -1 : BigInt(a.ts) > BigInt(b.ts) ? 1 : a.id - b.id));
  const width = LEFT + lanes.length * LANE + 20;
  const height = 50 + items.length * ROW + 20;
  if (items.length === 0) return html`<p class="muted">No message recorded among these processes${data.from ? ' in this window' : ''}. Messages are recorded for traced senders.</p>`;
  return html`<div class="diagram-box"><svg class="diagram" width=${width} height=${height} data-testid="diagram">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
      <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" /></marker></defs>
    ${lanes.map((l) => html`<g class="lane" data-pid=${l.pid}>
      <text x=${x.get(l.pid)} y="16" class="lane-label">${l.name || (l.module && !l.module.startsWith(':') ? l.module.split('.').pop() : l.pid)}</text>
      <text x=${x.get(l.pid)} y="30" class="lane-pid">${l.name || l.module ? l.pid : ''}</text>
      <line x1=${x.get(l.pid)} x2=${x.get(l.pid)} y1="38" y2=${height - 10} class="lifeline" /></g>`)}
    ${items.map((it, i) => {
    const y = 54 + i * ROW;
    const time = html`<text x="4" y=${y + 4} class="row-time">${wallText(it.ts)}</text>`;
    if (it.kind === 'mark') {
      const cx = x.get(it.m.pid);
      return html`<g class=${`mark mark-${it.m.type}`} data-id=${it.id} onClick=${() => onPick(it.id)}>${time}
        <text x=${cx} y=${y + 5} class="cross">✕</text><text x=${cx + 10} y=${y + 4} class="mark-label">${it.m.type}: ${it.m.reason}</text>
        <title>${it.m.type} ${it.m.reason}</title></g>`;
    }
    const m = it.m;
    const x1 = x.get(m.from);
    const x2 = x.get(m.to);
    if (x1 === undefined || x2 === undefined) return null;
    const self = x1 === x2;
    const room = Math.max(12, Math.floor((self ? 200 : Math.abs(x2 - x1)) / 6.8));
    const label = m.label.length > room ? `${m.label.slice(0, room - 1)}…` : m.label;
    const delivered = m.recv_ts ? ` delivered after ${durationText(BigInt(m.recv_ts) - BigInt(m.ts))}` : ' (receiver not traced)';
    return html`<g class=${`msg${picked === m.id ? ' picked' : ''}`} data-id=${m.id} data-from=${m.from} data-to=${m.to} onClick=${() => onPick(m.id)}>
      ${time}
      ${self ? html`<path d=${`M ${x1} ${y} h 30 v 10 h -28`} class="arrow" marker-end="url(#arrow)" />`
    : html`<line x1=${x1} x2=${x2} y1=${y} y2=${y} class=${`arrow${m.recv_ts ? '' : ' undelivered'}`} marker-end="url(#arrow)" />`}
      <text x=${(self ? x1 + 36 : (x1 + x2) / 2)} y=${y - 4} class="msg-label">${label}</text>
      <rect x=${Math.min(x1, x2) - 4} y=${y - ROW / 2} width=${Math.abs(x2 - x1) + 40} height=${ROW} class="hit" />
      <title>${m.summary}\n${wallText(m.ts)}${delivered}</title></g>`;
  })}
  </svg></div>`;
}
