// Privacy's pages (issue 20) in Debian's chromium driven by playwright-core:
// the privacy notice at phone size (390x844), reached from the footer of
// the home page; the client's "Delete my data" on the status page of a
// closed order (phone); the staff's erase with its confirmation step (order page
// -> "Erase personal data..." -> the confirmation -> "Erase personal data"
// -> the order page with the "erased" banner and no client name anywhere
// on it); and the client's status link afterwards, which answers the 410
// page. Every page is screenshot and checked: no horizontal scrolling, no
// serious or critical axe-core violation (WCAG 2.1 A and AA, best
// practice), as tests/browser/journey.mjs checks its pages.
//
// Run by tests/browser.py with one argument, a JSON object: base (the
// site's URL), user and password (a staff account), orderPath
// (/admin/orders/ID of a closed order, answered, its guarantee over),
// statusPath (its /o/TOKEN), clientName and clientEmail (which must be
// nowhere on the erased order's page), shots (the screenshot folder),
// deps (the folder whose node_modules holds playwright-core and
// axe-core) and chromium. Prints TAP points without numbers.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Stop, ok, must } from './tap.mjs';

const cfg = JSON.parse(process.argv[2]);
const require = createRequire(path.join(cfg.deps, 'package.json'));
const { chromium } = require('playwright-core');
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'];
const STEP_TIMEOUT = 10000;
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
let shotNo = 0;

/* Screenshots the page as label and checks it: no horizontal
 * scrolling, no serious or critical axe violation. */
async function visit(page, label) {
  await page.waitForLoadState('load');
  shotNo++;
  await page.screenshot({ path: path.join(cfg.shots, `${String(shotNo).padStart(2, '0')}-${label}.png`),
    fullPage: true });
  const [sw, cw] = await page.evaluate(() =>
    [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  ok(sw <= cw, `${label}: no horizontal scrolling`, `scrollWidth ${sw} > clientWidth ${cw}`);
  await page.evaluate(AXE_SOURCE);
  const found = await page.evaluate(async (tags) => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: tags },
      resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      targets: v.nodes.map((n) => n.target.join(' ')) }));
  }, AXE_TAGS);
  const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  ok(bad.length === 0, `no serious or critical axe violations on ${label}`,
    bad.map((v) => `${v.id} (${v.impact}): ${v.help}; ${v.targets.slice(0, 5).join(', ')}`).join('\n'));
}

/* Does action (a click that follows a link or submits a form) and waits
 * for the new page; returns its response's status. */
async function go(page, action) {
  const [res] = await Promise.all([page.waitForNavigation(), action()]);
  await page.waitForLoadState('load');
  return res ? res.status() : 0;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    // The notice at phone size, from the footer.
    const phone = await browser.newContext({ viewport: PHONE, isMobile: false, hasTouch: false });
    phone.setDefaultTimeout(STEP_TIMEOUT);
    const client = await phone.newPage();
    await client.goto(cfg.base + '/');
    const footer = client.locator('footer a[href="/privacy"]');
    must(await footer.count() === 1, 'the home page\'s footer links to the privacy notice');
    must(await go(client, () => footer.click()) === 200 && new URL(client.url()).pathname === '/privacy',
      'the footer link opens /privacy', client.url());
    await visit(client, 'privacy-phone');
    const notice = await client.locator('main').innerText();
    ok(/Privacy notice/.test(notice) && /Delete my data/.test(notice) && /data protection authority/.test(notice),
      'the privacy notice says how to have the data deleted and where to complain', notice.slice(0, 300));

    // The client asks, from the status page of the closed order, on the phone.
    await client.goto(cfg.base + cfg.statusPath);
    const del = client.getByRole('button', { name: 'Delete my data' });
    must(await del.count() === 1, 'the closed order\'s status page offers "Delete my data"');
    must(await go(client, () => del.click()) === 200 && new URL(client.url()).pathname === cfg.statusPath,
      '"Delete my data" comes back to the status page', client.url());
    await visit(client, 'status-erasure-asked-phone');
    ok(/You asked on .* for your personal data to be deleted/.test(
      await client.locator('#erasure-asked').innerText().catch(() => '')),
    'the status page says the request was made and an email will follow');

    // The staff's erase, with its confirmation step.
    const desk = await browser.newContext({ viewport: DESKTOP, isMobile: false, hasTouch: false });
    desk.setDefaultTimeout(STEP_TIMEOUT);
    const staff = await desk.newPage();
    await staff.goto(cfg.base + '/admin/login');
    await staff.locator('#username').fill(cfg.user);
    await staff.locator('#password').fill(cfg.password);
    await go(staff, () => staff.getByRole('button', { name: 'Sign in' }).click());
    await staff.goto(cfg.base + cfg.orderPath);
    await visit(staff, 'admin-order-erasure-asked');
    ok(/The client asked on .* for their personal data to be erased/.test(
      await staff.locator('#erasure-request').innerText().catch(() => '')),
    'the order page shows the client\'s erasure request');
    const link = staff.locator('#erase-link');
    must(await link.count() === 1, 'the order page links to "Erase personal data…"');
    must(await go(staff, () => link.click()) === 200 &&
      new URL(staff.url()).pathname === cfg.orderPath + '/erase', 'the link opens the confirmation step',
    staff.url());
    await visit(staff, 'admin-erase-confirm');
    const confirmText = await staff.locator('main').innerText();
    ok(/What goes/.test(confirmText) && /What stays/.test(confirmText),
      'the confirmation says what goes and what stays');
    const button = staff.getByRole('button', { name: 'Erase personal data' });
    must(await button.count() === 1, 'it has the "Erase personal data" button');
    must(await go(staff, () => button.click()) === 200 && new URL(staff.url()).pathname === cfg.orderPath,
      'erasing comes back to the order page', staff.url());
    await visit(staff, 'admin-order-erased');
    const banner = await staff.locator('#erased').innerText().catch(() => '');
    ok(/Personal data erased on .* \(by /.test(banner), 'the order page shows the "erased" banner', banner);
    const html = await staff.content();
    ok(!html.includes(cfg.clientName) && !html.toLowerCase().includes(cfg.clientEmail.toLowerCase()),
      'no client name or address anywhere on the erased order\'s page');

    // The client's link afterwards.
    const status = await client.goto(cfg.base + cfg.statusPath);
    must(status.status() === 410, 'the client\'s status link answers 410 Gone', status.status());
    await visit(client, 'status-gone-phone');
    ok(/personal data was deleted on/.test(await client.locator('main').innerText()),
      'the 410 page says the personal data was deleted');
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (e) => {
  if (!(e instanceof Stop)) {
    console.log('not ok - the privacy script crashed');
    console.log('# ' + String(e.stack || e).split('\n').join('\n# '));
  }
  process.exit(2);
});
