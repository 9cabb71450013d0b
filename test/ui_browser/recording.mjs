// The UI on a recording loaded with ElixirScope.load/1 (post-mortem): what the header,
// the processes view and a state step show. Run by test/ui_browser_test.exs.
//
//   node recording.mjs PLAN.json      PLAN: {url, shots, cart}
import fs from 'node:fs';
import { shot, withBrowser } from './browser.mjs';

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const seen = {};
const T = 15000;

await withBrowser(async (page, problems) => {
  await page.goto(`${plan.url}#/processes`);
  await page.waitForSelector('table[data-testid=processes] tbody tr', { timeout: T });
  await page.waitForSelector('[data-testid=recording]', { timeout: T });
  seen.recording = await page.textContent('[data-testid=recording]');
  seen.headers = await page.$$eval('table[data-testid=processes] th', (els) => els.map((e) => e.textContent.trim()));
  await page.fill('input.search', plan.cart);
  await page.waitForFunction((pid) => {
    const rows = document.querySelectorAll('table[data-testid=processes] tbody tr');
    return rows.length === 1 && rows[0].getAttribute('data-pid') === pid;
  }, plan.cart, { timeout: T });
  seen.cart_states = await page.$eval('table[data-testid=processes] tbody tr td:last-child', (e) => e.textContent.trim());
  await shot(page, plan.shots, 'recording');
  await page.goto(`${plan.url}#/states/${encodeURIComponent(plan.cart)}`);
  await page.waitForSelector('.step .time', { timeout: T });
  seen.state_time = await page.$eval('.step .time', (e) => e.firstChild.textContent.trim());
  seen.problems = problems;
});

process.stdout.write(`${JSON.stringify(seen)}\n`);
