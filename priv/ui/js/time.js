// Times as people read them. Events carry raw monotonic timestamps (native units, as
// strings: they do not fit in a double); with the recording's time offset
// (/api/meta) they become wall-clock times with microseconds. An "anchor" event, picked
// by clicking a time, turns every time on the page into an offset from it too. The raw
// value stays available: in each time's tooltip, and copied by the anchor bar.
import { html, useEffect, useState } from './lib.js';

let offset = null; // BigInt: system time - monotonic time, native units; null: unknown
let perSecond = 1000000000n;
let origin = null; // BigInt: the first timestamp of a loaded recording without a clock
let anchor = null; // {ts: string, label: string}
const listeners = new Set();

export function setClock(clock, originTs) {
  offset = clock.offset == null ? null : BigInt(clock.offset);
  perSecond = BigInt(clock.per_second);
  origin = originTs == null ? null : BigInt(originTs);
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// Microseconds since the Unix epoch of a raw timestamp (BigInt), or null.
function wallMicros(ts) {
  if (offset === null || ts == null) return null;
  return ((BigInt(ts) + offset) * 1000000n) / perSecond;
}

// "12:03:07.123456" (local time), or, without a clock, "T+1.234567 s" from the start.
export function wallText(ts) {
  const us = wallMicros(ts);
  if (us === null) return origin === null || ts == null ? '—' : `T${offsetText(ts, origin)}`;
  const d = new Date(Number(us / 1000n));
  const frac = pad(((us % 1000000n) + 1000000n) % 1000000n, 6);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${frac}`;
}

// "2026-12-05 12:03:07.123456" for tooltips.
function dateText(ts) {
  const us = wallMicros(ts);
  if (us === null) return wallText(ts);
  const d = new Date(Number(us / 1000n));
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${wallText(ts)}`;
}

// A duration in native units (BigInt or string) as "850 ns", "5.2 µs", "523 µs",
// "12.345 ms", "1.234567 s".
export function durationText(native) {
  if (native == null) return '—';
  const us = micros(native);
  const abs = Math.abs(us);
  if (abs < 1) return `${Math.round(us * 1000)} ns`;
  if (abs < 10) return `${us.toFixed(1)} µs`;
  if (abs < 1000) return `${Math.round(us)} µs`;
  if (abs < 1000000) return `${(us / 1000).toFixed(3)} ms`;
  return `${(us / 1000000).toFixed(6)} s`;
}

// Native units (a difference of timestamps, a duration) to microseconds, a Number.
export function micros(native) {
  return (Number(BigInt(native)) * 1000000) / Number(perSecond);
}

function offsetText(ts, from) {
  const d = BigInt(ts) - BigInt(from);
  return `${d < 0n ? '−' : '+'}${durationText(d < 0n ? -d : d)}`;
}

function setAnchor(a) { anchor = a; listeners.forEach((f) => f(anchor)); }

function useAnchor() {
  const [a, setA] = useState(anchor);
  useEffect(() => { listeners.add(setA); return () => listeners.delete(setA); }, []);
  return a;
}

// A time: wall clock (and the offset from the anchor, when there is one). Clicking it
// makes it the anchor; the tooltip has the date and the raw value.
export function Time({ ts, label }) {
  const a = useAnchor();
  if (ts == null) return html`<span class="time">—</span>`;
  const title = `${dateText(ts)}\nraw: ${ts}\nclick: show offsets from this time`;
  const click = (e) => {
    e.stopPropagation();
    setAnchor({ ts, label: label || wallText(ts) });
  };
  return html`<span class="time" title=${title} onClick=${click} data-ts=${ts}>${wallText(ts)}${
    a && html` <span class="offset">${a.ts === ts ? '⚓' : offsetText(ts, a.ts)}</span>`
  }</span>`;
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (_) {
    return false;
  }
}

// The header's anchor bar: which time offsets are counted from, its raw value to copy.
export function AnchorBar() {
  const a = useAnchor();
  const [copied, setCopied] = useState(false);
  if (!a) return html`<span class="anchor-bar muted">click a time to measure from it</span>`;
  const copy = async () => { setCopied(await copyText(a.ts)); setTimeout(() => setCopied(false), 1500); };
  return html`<span class="anchor-bar">offsets from <b>${a.label}</b>
    <code class="raw" title="raw monotonic timestamp">${a.ts}</code>
    <button class="small" onClick=${copy}>${copied ? 'copied' : 'copy raw'}</button>
    <button class="small" onClick=${() => setAnchor(null)} title="stop showing offsets">✕</button></span>`;
}
