// The browser half of test/ui_browser_test.exs: opens each view of the UI of a real
// traced application, interacts with it as a person would, and reports what the page
// shows (as JSON on stdout); ExUnit compares that with what the store holds.
//
//   node views.mjs PLAN.json      PLAN: {url, shots, pids: {cart, client, worker}, module}
import fs from 'node:fs';
import { shot, withBrowser } from './browser.mjs';

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { url, shots, pids } = plan;
const seen = {};
const T = 15000;

const texts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));
const attrs = (page, sel, name) => page.$$eval(sel, (els, n) => els.map((e) => e.getAttribute(n)), name);
const hash = (view, arg, params = {}) => `#/${view}${arg ? `/${encodeURIComponent(arg)}` : ''}${Object.keys(params).length ? `?${new URLSearchParams(params)}` : ''}`;

async function open(page, view, arg, params) {
  await page.goto(url + hash(view, arg, params));
}

await withBrowser(async (page, problems) => {
  // 1. Processes: first rows, search, open one.
  await open(page, 'processes');
  await page.waitForSelector('table[data-testid=processes] tbody tr', { timeout: T });
  seen.processes = {
    first_rows_ms: await page.evaluate(() => window.__scope.firstRows),
    pids: await attrs(page, 'table[data-testid=processes] tbody tr', 'data-pid'),
    headers: await texts(page, 'table[data-testid=processes] th'),
  };
  await shot(page, shots, 'processes');
  await page.fill('input.search', 'UIApp.Cart');
  await page.waitForFunction(() => document.querySelectorAll('table[data-testid=processes] tbody tr').length === 1, null, { timeout: T });
  const row = 'table[data-testid=processes] tbody tr';
  seen.processes.search = { pids: await attrs(page, row, 'data-pid'), cells: await texts(page, `${row} td`) };
  await page.click(`${row} a.pid`);
  await page.waitForSelector('section.process h2', { timeout: T });
  seen.process = { title: (await texts(page, 'section.process h2'))[0], links: await texts(page, 'nav.links a') };
  await shot(page, shots, 'process');

  // 2. State timeline: slider and keyboard.
  await open(page, 'states', pids.cart);
  await page.waitForSelector('.step', { timeout: T });
  const step = async () => ({
    position: (await texts(page, '[data-testid=position]'))[0],
    id: Number(await page.getAttribute('.step', 'data-id')),
    callback: (await texts(page, '[data-testid=callback]'))[0],
    cause: (await texts(page, '[data-testid=cause]'))[0],
    diff: await texts(page, '[data-testid=diff] li'),
    changed_rows: await attrs(page, '.tree .row.ch-changed, .tree .row.ch-added', 'data-path'),
  });
  seen.states = { last: await step() };
  const waitId = (id) => page.waitForFunction((i) => Number(document.querySelector('.step')?.getAttribute('data-id')) === i, id, { timeout: T });
  for (let i = 0; i < 3; i += 1) await page.keyboard.press('ArrowLeft');
  await waitId(plan.state_ids[plan.state_ids.length - 4]);
  seen.states.back3 = await step();
  await page.keyboard.press('j');
  await waitId(plan.state_ids[plan.state_ids.length - 3]);
  seen.states.forward1 = await step();
  await page.keyboard.press('Home');
  await waitId(plan.state_ids[0]);
  seen.states.first = await step();
  seen.states.tree_rows = await texts(page, '.tree .row');
  // open a collapsed node, step, and it stays open
  await page.keyboard.press('End');
  await waitId(plan.state_ids[plan.state_ids.length - 1]);
  seen.states.renders = await page.evaluate(() => window.__scope.stepRenders || []);
  await shot(page, shots, 'states');

  // 3. Messages: the diagram of two processes; click one message.
  await open(page, 'messages', null, { pids: `${pids.client},${pids.cart}` });
  await page.waitForSelector('svg[data-testid=diagram] g.msg', { timeout: T });
  seen.messages = {
    ids: (await attrs(page, 'svg[data-testid=diagram] g.msg', 'data-id')).map(Number),
    lanes: await attrs(page, 'svg[data-testid=diagram] g.lane', 'data-pid'),
    labels: await texts(page, 'svg[data-testid=diagram] g.msg text.msg-label'),
  };
  await page.click('svg[data-testid=diagram] g.msg rect.hit >> nth=0');
  await page.waitForSelector('[data-testid=event-detail] .field', { timeout: T });
  seen.messages.detail = { fields: await attrs(page, '[data-testid=event-detail] .field', 'data-field') };
  // brush the density strip: its first half
  const strip = await page.$('svg[data-testid=overview]');
  const box = await strip.boundingBox();
  await page.mouse.move(box.x + 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => location.hash.includes('from='), null, { timeout: T });
  await page.waitForTimeout(300);
  await page.waitForSelector('svg[data-testid=diagram] g.msg', { timeout: T });
  seen.messages.brushed = {
    hash: await page.evaluate(() => decodeURIComponent(location.hash)),
    ids: (await attrs(page, 'svg[data-testid=diagram] g.msg', 'data-id')).map(Number),
  };
  await page.click('svg[data-testid=diagram] g.msg rect.hit >> nth=0');
  await shot(page, shots, 'messages');

  // 4. Calls: the icicle and tree of the cart's calls; click the one that raised.
  await open(page, 'calls', null, { pid: pids.cart, module: plan.module });
  await page.waitForSelector('[data-testid=call-tree] .call', { timeout: T });
  await page.waitForSelector('table[data-testid=latency] tbody tr', { timeout: T });
  seen.calls = {
    roots: (await attrs(page, '[data-testid=call-tree] > li > .call', 'data-id')).map(Number),
    bars: (await attrs(page, 'svg[data-testid=icicle] g.bar', 'data-id')).map(Number),
    latency: await attrs(page, 'table[data-testid=latency] tbody tr', 'data-function'),
  };
  await page.click('[data-testid=call-tree] .call.exc button.link');
  await page.waitForSelector('[data-testid=call-detail] h4', { timeout: T });
  seen.calls.detail = await texts(page, '[data-testid=call-detail] h4');
  await shot(page, shots, 'calls');

  // 5. Crashes.
  await open(page, 'crashes');
  await page.waitForSelector(`article.crash[data-pid="${pids.worker}"]`, { timeout: T });
  const card = `article.crash[data-pid="${pids.worker}"]`;
  seen.crashes = {
    reason: (await texts(page, `${card} [data-testid=reason]`))[0],
    stack: (await texts(page, `${card} pre.stack`))[0],
    messages: await texts(page, `${card} .two > div:nth-child(2) li code`),
  };
  await shot(page, shots, 'crashes');

  // 6. Phoenix (this application has none: the view says so).
  await open(page, 'phoenix');
  await page.waitForSelector('section.phoenix p.muted:not(.loading), table[data-testid=requests]', { timeout: T });
  seen.phoenix = { text: (await texts(page, 'section.phoenix'))[0] };
  await shot(page, shots, 'phoenix');

  // 7. Live tail: rows arrive; filter by type; pause holds the page still.
  await open(page, 'tail');
  await page.waitForSelector('table[data-testid=tail] tr', { timeout: T });
  await page.click('button.chip.type-state');
  await page.waitForFunction(() => location.hash.includes('types=state'), null, { timeout: T });
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('table[data-testid=tail] tr')];
    return rows.length > 0 && rows.every((r) => r.classList.contains('ev-state'));
  }, null, { timeout: T });
  seen.tail = { types: await page.$$eval('table[data-testid=tail] tr', (rs) => [...new Set(rs.map((r) => r.className))]) };
  await page.waitForFunction((n) => document.querySelectorAll('table[data-testid=tail] tr').length > n, 2, { timeout: T });
  await page.click('[data-testid=pause]');
  const paused = await attrs(page, 'table[data-testid=tail] tr', 'data-id');
  await page.waitForTimeout(1500);
  seen.tail.paused_same = JSON.stringify(await attrs(page, 'table[data-testid=tail] tr', 'data-id')) === JSON.stringify(paused);
  seen.tail.paused_rows = paused.length;
  seen.tail.status = (await texts(page, '[data-testid=tail-status]'))[0];
  await page.click('[data-testid=pause]');
  await page.waitForFunction((n) => document.querySelectorAll('table[data-testid=tail] tr').length > n, paused.length, { timeout: T });
  seen.tail.resumed_rows = await page.$$eval('table[data-testid=tail] tr', (rs) => rs.length);
  seen.tail.ids = (await attrs(page, 'table[data-testid=tail] tr', 'data-id')).map(Number);
  await shot(page, shots, 'tail');

  // 8. Exports: the Mermaid text, and the Chrome trace downloaded.
  await open(page, 'exports', null, { pids: `${pids.client},${pids.cart}` });
  await page.click('[data-testid=mermaid-show]');
  await page.waitForSelector('[data-testid=mermaid]', { timeout: T });
  seen.exports = { mermaid: (await texts(page, '[data-testid=mermaid]'))[0] };
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=chrome-link]')]);
  const file = await download.path();
  seen.exports.chrome_events = JSON.parse(fs.readFileSync(file, 'utf8')).traceEvents.length;
  await shot(page, shots, 'exports');

  seen.problems = problems;
});

process.stdout.write(`${JSON.stringify(seen)}\n`);
