// Drives Converse.js in Debian's headless chromium with playwright-core:
// it logs in with the page's settings, waits for the peer's presence in
// the roster, sends a message to the peer and waits for the answer, and
// saves a screenshot. Usage:
//   node converse_test.mjs PAGE_URL PEER_JID BODY REPLY SCREENSHOT
// It prints "ok" and exits 0 when everything was seen, 1 otherwise.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [pageURL, peer, body, reply, screenshot] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const profile = mkdtempSync(join(tmpdir(), 'ambrosia-chromium-'));
const step = (s) => console.log('step: ' + s);

const browser = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  ignoreHTTPSErrors: true, // the server's self-signed certificate
  viewport: { width: 1280, height: 800 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--ignore-certificate-errors'],
});
// Nothing leaves the machine (Converse's login form shows sponsors' logos
// from its web site).
await browser.route((u) => !['127.0.0.1', 'localhost'].includes(u.hostname), (r) => r.abort());
let failed = false;
const page = browser.pages()[0] || await browser.newPage();
page.on('console', (m) => {
  if ((m.type() === 'error' || m.type() === 'warning') && !m.text().includes('net::ERR_FAILED')) console.log('console ' + m.type() + ': ' + m.text());
});
page.on('pageerror', (e) => console.log('page error: ' + e.message));
page.on('requestfailed', (r) => {
  if (['127.0.0.1', 'localhost'].includes(new URL(r.url()).hostname)) console.log('request failed: ' + r.url() + ' ' + (r.failure()?.errorText || ''));
});
page.on('response', (r) => { if (r.status() >= 400) console.log('HTTP ' + r.status() + ': ' + r.url()); });
try {
  await page.goto(pageURL);
  step('page loaded');
  await page.waitForFunction(() => window.ambrosiaTest?.api?.connection?.connected?.() === true, null, { timeout: 30000 });
  step('logged in as ' + await page.evaluate(() => window.ambrosiaTest.session.get('jid')));
  // The peer's presence shows in the roster: Converse's contact is
  // online, and the roster lists it.
  // Polled from here: page.evaluate waits for the async lookup, which a
  // predicate of waitForFunction would return as a (truthy) promise.
  for (const until = Date.now() + 30000; ; await new Promise((r) => setTimeout(r, 250))) {
    const online = await page.evaluate(async (jid) => {
      const c = await window.ambrosiaTest.api.contacts.get(jid);
      return Boolean(c && (c.getStatus?.() === 'online' || c.presence?.get?.('show') === 'online'));
    }, peer);
    if (online) break;
    if (Date.now() > until) throw new Error('the peer ' + peer + ' is not online in the roster after 30 s');
  }
  step('peer online in the roster: ' + await page.evaluate(async (jid) => {
    const c = await window.ambrosiaTest.api.contacts.get(jid);
    return JSON.stringify({ status: c.getStatus?.(), presence: c.presence?.toJSON?.(), sub: c.get('subscription') });
  }, peer));
  // And the roster in the page shows it online.
  await page.locator('.roster-contacts li[data-status="online"]', { hasText: peer }).first().waitFor({ timeout: 15000 });
  step('roster shows the peer online');
  // A message through the user interface, as a user sends it.
  await page.evaluate((jid) => window.ambrosiaTest.api.chats.open(jid, {}, true), peer);
  const textarea = page.locator('.chat-textarea').first();
  await textarea.waitFor({ timeout: 15000 });
  await textarea.fill(body);
  await textarea.press('Enter');
  step('message sent');
  await page.locator('.chat-msg__text', { hasText: reply }).first().waitFor({ timeout: 30000 });
  step('reply shown');
  await page.screenshot({ path: screenshot, fullPage: true });
  step('screenshot ' + screenshot);
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
