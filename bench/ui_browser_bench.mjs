// The browser half of bench/ui_bench.exs: measurements in Debian's chromium of the UI
// the bench serves. Modes:
//   first-rows  {url, runs}          fresh page loads of #/processes: first rows on screen
//   stepping    {url, pid, ids, steps}  → through a state timeline; re-render times
//   tail        {url, seconds}       #/tail under load: rows, JS heap after GC every 5 s
import fs from 'node:fs';
import { withBrowser } from '../test/ui_browser/browser.mjs';

const [mode, planPath] = process.argv.slice(2);
const plan = JSON.parse(fs.readFileSync(planPath, 'utf8'));
const T = 60000;
const out = {};

async function firstRows(page) {
  out.first_rows_ms = [];
  out.api_ms = [];
  for (let i = 0; i < plan.runs; i += 1) {
    await page.goto('about:blank');
    await page.goto(`${plan.url}#/processes`);
    await page.waitForSelector('table[data-testid=processes] tbody tr', { timeout: T });
    out.first_rows_ms.push(await page.evaluate(() => window.__scope.firstRows));
    out.api_ms.push(await page.evaluate(() => {
      const e = performance.getEntriesByType('resource').find((r) => r.name.includes('api/processes'));
      return e ? e.responseEnd - e.requestStart : null;
    }));
    (out.breakdown = out.breakdown || []).push(await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const res = (part) => performance.getEntriesByType('resource').find((r) => r.name.includes(part));
      const scripts = performance.getEntriesByType('resource').filter((r) => /\.(m?js|css)$/.test(r.name));
      return {
        html: nav.responseEnd,
        scripts_done: Math.max(...scripts.map((r) => r.responseEnd)),
        dom_content_loaded: nav.domContentLoadedEventEnd,
        meta: [res('api/meta').startTime, res('api/meta').responseEnd],
        processes: [res('api/processes').startTime, res('api/processes').responseEnd],
        first_rows: window.__scope.firstRows,
      };
    }));
  }
}

async function stepping(page) {
  const { pid, ids, steps } = plan;
  const stepId = () => page.evaluate(() => Number(document.querySelector('.step')?.getAttribute('data-id')));
  await page.goto(`${plan.url}#/states/${encodeURIComponent(pid)}?id=${ids[0]}`);
  await page.waitForSelector('.step', { timeout: T });
  for (let i = 1; i <= steps; i += 1) {
    await page.waitForTimeout(250); // the steps ahead arrive meanwhile
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction((id) => Number(document.querySelector('.step')?.getAttribute('data-id')) === id, ids[i], { timeout: T });
  }
  await page.waitForTimeout(100);
  out.renders = await page.evaluate(() => window.__scope.stepRenders.slice());
  out.tree_rows = Number(await page.getAttribute('.tree', 'data-rows'));
  await page.keyboard.press('Home');
  await page.waitForFunction((id) => Number(document.querySelector('.step')?.getAttribute('data-id')) === id, ids[0], { timeout: T });
  await page.waitForTimeout(100);
  const all = await page.evaluate(() => window.__scope.stepRenders);
  out.jump = all[all.length - 1];
  out.at = await stepId();
}

async function tail(page) {
  await page.goto(`${plan.url}#/tail`);
  await page.waitForSelector('table[data-testid=tail] tr', { timeout: T });
  out.samples = [];
  const t0 = Date.now();
  while (Date.now() - t0 < plan.seconds * 1000) {
    await page.waitForTimeout(5000);
    out.samples.push(await page.evaluate(() => {
      window.gc();
      return {
        heap: performance.memory.usedJSHeapSize,
        rows: document.querySelectorAll('table[data-testid=tail] tr').length,
        dom: document.getElementsByTagName('*').length,
      };
    }));
  }
  out.polls = await page.evaluate(() => window.__scope.tail.polls);
  const meta = await page.evaluate(async () => (await (await fetch('api/meta')).json()).store.newest_id);
  const shown = await page.$$eval('table[data-testid=tail] tr', (rs) => Math.max(...rs.map((r) => Number(r.getAttribute('data-id')))));
  out.lag_ids = meta - shown;
}

await withBrowser(async (page) => {
  if (mode === 'first-rows') await firstRows(page);
  else if (mode === 'stepping') await stepping(page);
  else if (mode === 'tail') await tail(page);
  else throw new Error(`unknown mode ${mode}`);
}, { extraArgs: ['--js-flags=--expose-gc'] });

process.stdout.write(`${JSON.stringify(out)}\n`);
