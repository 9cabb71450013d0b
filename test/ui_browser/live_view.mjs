// The real Phoenix application's LiveView, channel and login form, used in Debian's
// chromium as a person would, step by step: the Elixir test (test/phoenix/*_test.exs)
// reads one JSON line per step on stdout and answers "go" on stdin when it has done
// what it needs in between (tracing the LiveView process, looking at the recording).
//
//   node live_view.mjs APP_URL
//
// Steps: connected (the LiveView's websocket is up) · clicked (3 increments, a cart
// change made by another client that the LiveView hears of by PubSub, one more
// increment, the component's own event) · saved (a form with a password and a card
// number submitted over the websocket) · channel (a Phoenix channel joined and
// pinged) · login (the login form posted over HTTP) · crashed (an event whose handler
// raises; the page rejoins).
import readline from 'node:readline';
import { withBrowser } from './browser.mjs';

const app = process.argv[2];
const T = 20000;
const input = readline.createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();

async function step(name, data = {}) {
  process.stdout.write(`${JSON.stringify({ step: name, ...data })}\n`);
  const { value, done } = await lines.next();
  if (done || value.trim() !== 'go') throw new Error(`no go after ${name}: ${value}`);
}

const text = (page, sel) => page.$eval(sel, (e) => e.textContent.trim());

// One click, seen on the page before the next (a click that lands while the socket is
// still settling is clicked again).
async function increment(page) {
  const before = Number(await text(page, '#count'));
  for (let tries = 0; tries < 5; tries += 1) {
    await page.click('#inc');
    const seen = await page
      .waitForFunction((n) => Number(document.querySelector('#count').textContent.trim()) > n, before, { timeout: 3000 })
      .then(() => true, () => false);
    if (seen) return;
  }
  throw new Error('the count did not change');
}

await withBrowser(async (page, problems) => {
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`); });
  await page.goto(`${app}/counter`);
  await page.waitForSelector('[data-phx-main].phx-connected', { timeout: T });
  await step('connected', { problems: [...problems] });

  for (let i = 0; i < 3; i += 1) await increment(page);
  // Another client adds to the cart: the cart broadcasts, the LiveView's handle_info
  // takes the new total.
  const before = await text(page, '#cart-total');
  const status = await page.evaluate(async () => {
    const r = await fetch('/cart/items', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ item: 'plum', price: 5 }),
    });
    return r.status;
  });
  await page.waitForFunction((b) => document.querySelector('#cart-total').textContent.trim() !== b, before, { timeout: T });
  await increment(page);
  await page.click('#badge-toggle');
  await page.waitForFunction(() => document.querySelector('#badge-state').textContent.startsWith('open'), null, { timeout: T });
  await step('clicked', { status, count: await text(page, '#count'), cartTotal: await text(page, '#cart-total') });

  await page.fill('#note', 'remember the milk');
  await page.fill('#lv-password', 'lv-secret-pw');
  await page.fill('#card', '4111111111111111');
  await page.click('#save');
  await page.waitForFunction(() => document.querySelector('#saved').textContent.trim() !== '', null, { timeout: T });
  await step('saved', { saved: await text(page, '#saved') });

  const reply = await page.evaluate(async () => {
    const { Socket } = await import('/assets/phoenix/phoenix.mjs');
    const socket = new Socket('/socket', {});
    socket.connect();
    const channel = socket.channel('room:lobby', { nick: 'ann', token: 'chan-token-secret' });
    const join = await new Promise((ok, ko) => channel.join().receive('ok', ok).receive('error', ko).receive('timeout', () => ko(new Error('join timeout'))));
    const pong = await new Promise((ok, ko) => channel.push('ping', { n: 1 }).receive('ok', ok).receive('error', ko).receive('timeout', () => ko(new Error('push timeout'))));
    socket.disconnect();
    return { join, pong };
  });
  await step('channel', reply);

  await page.goto(`${app}/login`);
  await page.fill('#email', 'ann@example.com');
  await page.fill('#password', 'correct horse');
  await Promise.all([page.waitForNavigation({ timeout: T }), page.click('button[type=submit]')]);
  await step('login', { body: (await page.textContent('body')).trim(), problems: [...problems] });

  await page.goto(`${app}/counter`);
  await page.waitForSelector('[data-phx-main].phx-connected', { timeout: T });
  await page.click('#crash');
  // LiveView's client rejoins with a fresh process after the crash
  await page.waitForSelector('[data-phx-main].phx-connected', { timeout: T });
  await step('crashed', { problems });
});
input.close();
