// The web UI mounted in the real Phoenix application (forward "/scope",
// ElixirScope.UI.Plug, behind the app's basic authentication): a LiveView is used in
// the browser, then the UI's Phoenix view shows the requests and that LiveView's
// events with assigns diffs. Run by test/phoenix/ui_plug_test.exs.
//
//   node phoenix.mjs PLAN.json      PLAN: {app, user, password, shots, cart}
import fs from 'node:fs';
import { shot, withBrowser } from './browser.mjs';

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const seen = {};
const T = 20000;
const texts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));

await withBrowser(async (page, problems) => {
  // The application's own LiveView, used as a person would.
  await page.goto(`${plan.app}/counter`);
  await page.waitForSelector('[data-phx-main].phx-connected, .phx-connected', { timeout: T });
  // Three increments, each seen on the page before the next (a click that lands while
  // the socket is still settling is clicked again).
  const count = () => page.$eval('#count', (e) => Number(e.textContent.trim()));
  for (let tries = 0; (await count()) < 3 && tries < 10; tries += 1) {
    const before = await count();
    await page.click('#inc');
    await page.waitForFunction((n) => Number(document.querySelector('#count').textContent.trim()) > n, before, { timeout: 3000 }).catch(() => {});
  }
  seen.count = await count();

  // (What the application's own page asked for is not the UI's business: its
  // favicon is a 404.)
  problems.length = 0;

  // The UI under /scope (redirected to /scope/).
  await page.goto(`${plan.app}/scope`);
  await page.waitForSelector('header.top', { timeout: T });
  seen.url = page.url();
  await page.goto(`${plan.app}/scope/#/phoenix`);
  await page.waitForSelector('table[data-testid=requests] tbody tr', { timeout: T });
  seen.paths = await texts(page, 'table[data-testid=requests] tbody tr td:nth-child(3)');
  seen.statuses = await texts(page, 'table[data-testid=requests] tbody tr td:nth-child(4)');
  await shot(page, plan.shots, 'phoenix');
  await page.click('table[data-testid=requests] tbody tr a:has-text("/cart/items")');
  await page.waitForSelector('[data-testid=request] table tr', { timeout: T });
  seen.request = {
    title: (await texts(page, '[data-testid=request] h3'))[0],
    types: await texts(page, '[data-testid=request] table tr td:nth-child(2)'),
  };

  await page.goto(`${plan.app}/scope/#/phoenix?tab=live_views`);
  await page.waitForSelector('table[data-testid=live-views] tbody tr', { timeout: T });
  seen.live_views = await texts(page, 'table[data-testid=live-views] tbody tr td:nth-child(2)');
  await page.click('table[data-testid=live-views] tbody tr:has(td:nth-child(4):text("yes")) a');
  await page.waitForSelector('[data-testid=live-view] table tr', { timeout: T });
  seen.live_view = {
    kinds: await texts(page, '[data-testid=live-view] table tr td:nth-child(2)'),
    diffs: await texts(page, '[data-testid=live-view] ul.diff li'),
  };
  await shot(page, plan.shots, 'live_view');

  // the cart's states, through the mount
  await page.goto(`${plan.app}/scope/#/states/${encodeURIComponent(plan.cart)}`);
  await page.waitForSelector('.step', { timeout: T });
  seen.states_position = (await texts(page, '[data-testid=position]'))[0];
  seen.problems = problems;
}, { httpCredentials: { username: plan.user, password: plan.password } });

process.stdout.write(`${JSON.stringify(seen)}\n`);
