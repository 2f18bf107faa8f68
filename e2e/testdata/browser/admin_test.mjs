// Drives the web admin page in Debian's headless chromium with
// playwright-core, as an operator would: logs in with an administrator's
// account, finds a user and their online session, kicks the session with
// a reason, and saves a screenshot. Usage:
//   node admin_test.mjs PAGE_URL ADMIN_JID PASSWORD USER SESSION REASON SCREENSHOT
// It prints "ok" and exits 0 when everything was seen, 1 otherwise.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [pageURL, admin, password, user, session, reason, screenshot] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), 'ambrosia-chromium-'));
const step = (s) => console.log('step: ' + s);

const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  ignoreHTTPSErrors: true, // the server's self-signed certificate
  viewport: { width: 1280, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--ignore-certificate-errors'],
});
// The page must need nothing from elsewhere: any other request fails the
// test.
const foreign = [];
await browser.route((u) => !['127.0.0.1', 'localhost'].includes(u.hostname), (r) => { foreign.push(r.request().url()); r.abort(); });
let failed = false;
const page = browser.pages()[0] || await browser.newPage();
page.on('console', (m) => { if (m.type() === 'error') console.log('console error: ' + m.text()); });
page.on('pageerror', (e) => { failed = true; console.log('page error: ' + e.message); });
try {
  await page.goto(pageURL);
  step('page loaded');
  await page.fill('#login-account input[name=jid]', admin);
  await page.fill('#login-account input[name=password]', password);
  await page.click('#login-account button[type=submit]');
  await page.locator('#app').waitFor({ state: 'visible', timeout: 15000 });
  step('logged in: ' + await page.textContent('#who'));
  await page.locator(`#user-list tr[data-user="${user}"]`).waitFor({ timeout: 15000 });
  step('user listed');
  const row = page.locator(`#session-list tr[data-session="${session}"]`);
  await row.waitFor({ timeout: 15000 });
  step('session listed: ' + (await row.textContent()));
  await page.locator('#counters tr[data-metric="ambrosia_c2s_sessions"]').waitFor({ timeout: 15000 });
  step('counters: ' + (await page.textContent('#counters tr[data-metric="ambrosia_c2s_sessions"]')));
  // Every table loaded: the page shows no error.
  const shown = (await page.textContent('#error')).trim();
  if (shown) throw new Error('the page shows an error: ' + shown);
  await page.screenshot({ path: screenshot, fullPage: true });
  page.once('dialog', (d) => d.accept(reason));
  await row.locator('button', { hasText: 'Kick' }).click();
  await row.waitFor({ state: 'detached', timeout: 15000 });
  step('session kicked');
  if (foreign.length) throw new Error('requests to elsewhere: ' + foreign.join(', '));
  console.log('ok');
} catch (e) {
  failed = true;
  console.log('FAIL: ' + e.message);
  try { await page.screenshot({ path: screenshot, fullPage: true }); console.log('screenshot of the failure: ' + screenshot); } catch {}
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
