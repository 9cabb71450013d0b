// The CPU cost of one step of the state timeline's tree, in Node's V8 (the engine of
// chromium), apart from the page: what a step costs whatever else the machine runs
// (wall-clock times in a browser on a shared machine mostly measure the neighbours).
// Run by bench/ui_bench.exs with a state as /api/state answers it.
//
//   node bench/ui_tree_bench.mjs STATE.json
import fs from 'node:fs';
import { termText, tree } from '../priv/ui/js/term.js';
import { allRows } from './support/tree_all_rows.mjs';

const step = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const text = JSON.stringify(step);
const expanded = new Map();
expanded.version = 0;
const changes = new Map([['"user-5"\u0001:score', 'changed']]);
const SCREEN = 44; // rows drawn (480 px of 20 px rows, and a margin)

const cpu = (fun, n) => {
  for (let i = 0; i < 20; i += 1) fun();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i += 1) fun();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n / 1000;
};

const states = Array.from({ length: 30 }, () => JSON.parse(text).state);
let k = 0;
const next = () => states[(k += 1) % states.length];

const out = {
  parse_ms: cpu(() => JSON.parse(text), 100),
  windowed_ms: cpu(() => {
    const t = tree(next(), 3, expanded, changes);
    for (const r of t.rows(0, SCREEN)) termText(r.t, 120);
    return t.total;
  }, 200),
  all_rows_ms: cpu(() => {
    const rows = allRows(next(), 3, expanded, changes);
    for (const r of rows.slice(0, SCREEN)) termText(r.t, 120);
    return rows.length;
  }, 200),
  rows: tree(states[0], 3, expanded, changes).total,
  bytes: text.length,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
