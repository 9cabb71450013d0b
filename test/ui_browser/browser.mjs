// Debian's chromium, driven by playwright-core (pinned by package-lock.json): no
// browser is downloaded. A fresh profile directory for every run, removed after.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export async function withBrowser(fun, { width = 1280, height = 860, httpCredentials, extraArgs = [] } = {}) {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: run make setup (Debian's chromium)`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'scope-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width, height },
    acceptDownloads: true,
    httpCredentials,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--enable-precise-memory-info',
      ...extraArgs,
    ],
  });
  const page = context.pages()[0] || await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  // Nothing may be asked of any origin but the UI's own.
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!['http:', 'data:', 'blob:'].includes(u.protocol) || !['127.0.0.1', 'localhost'].includes(u.hostname)) {
      if (u.protocol !== 'data:') problems.push(`request to another origin: ${r.url()}`);
    }
  });
  try {
    return await fun(page, problems);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

export async function shot(page, dir, name) {
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}
