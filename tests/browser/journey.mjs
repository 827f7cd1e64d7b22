// The whole journey of one order, in Debian's chromium driven by
// playwright-core: the client asks (keyboard only, one mistake first),
// gets the confirmation email, the consultant signs in, marks it paid,
// previews and sends a Markdown answer, the client reads it, asks the one
// follow-up, the consultant answers, the client takes the refund link
// from the email, the consultant marks it refunded, the client sees
// "Refunded" and gets the receipt. Then a second order paid by card: the
// client presses "Pay ... by card", pays on the Stripe stand-in's checkout
// page (tests/stripe_standin.py), comes back to "Payment received", the
// consultant answers, the client asks for the refund and, with
// refund_auto_approve = yes, `pmbctl pay run` sends it back to the card
// and Stripe's confirmation makes the order "Refunded". The dashboard
// adds up both. On the way, issue 16's steps: the rating's thank-you
// pages ("yes"; "no" with its feedback), the queue's counts, the
// dashboard while the order is unpaid, its CSV links, search by a word's
// beginning and by #N; at the end the pages with no step of their own
// (/lost, snippets, audit) are opened to be checked.
//
// Run by tests/browser.py with one argument, a JSON object: base (the
// site's URL), user and password (a staff account), mailDir (where the
// test SMTP server writes NNN.json for each message), mailPid (the
// `pmbctl mail run` to wake with SIGUSR1), payPid (the `pmbctl pay run`
// to wake likewise), stripe (the stand-in's URL), shots (the screenshot
// folder), deps (the folder whose node_modules holds playwright-core),
// chromium, size ({label, width, height, javaScript}) and clientEmail.
//
// Prints TAP points without numbers ("ok - NAME", "not ok - NAME") and
// "#" comments; tests/browser.py numbers them. Every page visited is
// screenshot and checked: no horizontal scrolling, every form control
// labelled (DOM and accessibility tree), no serious or critical axe-core
// violation (WCAG 2.1 A and AA, and best practice); for the whole run: no console
// error, nothing blocked by the Content-Security-Policy, no failed
// request, no request off the site's own origin (so no mixed content)
// but the stand-in's checkout page (GET and POST /pay/cs_...), where the
// Pay button sends the client. That page is screenshot, not checked: it
// stands in for Stripe's.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Stop, ok, must } from './tap.mjs';

const cfg = JSON.parse(process.argv[2]);
const require = createRequire(path.join(cfg.deps, 'package.json'));
const { chromium } = require('playwright-core');

const STEP_TIMEOUT = 10000;     // one click, fill or page load
const MAIL_TIMEOUT = 20000;     // one email to arrive at the SMTP server
const REFUND_TIMEOUT = 20000;   // a card refund to be confirmed by Stripe
const size = cfg.size;

// --- TAP ----------------------------------------------------------------
function note(s) { console.log('# ' + s); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- what every page is checked for -------------------------------------
const seenPages = [];           // labels of the pages checked
const problems = { scroll: [], labels: [], axnames: [], focus: [] };
const consoleErrors = [];       // {url, text}
const formErrorPages = new Set();
const cspBlocked = [];
const failedRequests = [];
const downloaded = new Set();	// the URLs download() fetched
const offOrigin = [];
const mixed = [];
let requests = 0;
// The stand-in's checkout page: the one page off the site's origin.
const checkoutPage = new RegExp('^' + cfg.stripe.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') +
  '/pay/cs_[A-Za-z0-9_]+$');
let shotNo = 0;
const cdpSessions = new WeakMap();

/* Listens to one page's console and network for the final checks. */
function watch(page, who) {
  page.on('console', (m) => {
    const text = m.text();
    if (/Content[- ]Security[- ]Policy/i.test(text))
      cspBlocked.push(`${who} ${page.url()}: ${text}`);
    else if (/Mixed Content/i.test(text))
      mixed.push(`${who} ${page.url()}: ${text}`);
    else if (m.type() === 'error')
      consoleErrors.push({ url: m.location().url, text: `${who} ${page.url()}: ${text}` });
  });
  page.on('pageerror', (e) => consoleErrors.push({ url: '', text: `${who} ${page.url()}: ${e.message}` }));
  page.on('request', (r) => {
    requests++;
    const u = r.url();
    if (!u.startsWith(cfg.base + '/') && !u.startsWith('data:') && !u.startsWith('about:') &&
        !(who === 'client' && r.isNavigationRequest() && checkoutPage.test(u)))
      offOrigin.push(`${who} ${u}`);
    if (u.startsWith('http:') && page.url().startsWith('https:'))
      mixed.push(`${who} ${u} from ${page.url()}`);
  });
  page.on('requestfailed', async (r) => {
    const why = r.failure() ? r.failure().errorText : '?';
    // Chromium ends a fetch answered 204 No Content with ERR_ABORTED
    // although the page's fetch resolves (microsoft/playwright#32752):
    // the view beacon's answer. A response that arrived is no failure.
    const res = await r.response().catch(() => null);
    if (res && res.status() === 204 && /ERR_ABORTED/.test(why))
      return;
    // A link that downloads a file (Content-Disposition: attachment) ends
    // its navigation with ERR_ABORTED: the file arrived (download()).
    if (/ERR_ABORTED/.test(why) && downloaded.has(r.url()))
      return;
    if (/csp/i.test(why))
      cspBlocked.push(`${who} ${r.url()}: ${why}`);
    else
      failedRequests.push(`${who} ${r.url()}: ${why} (on ${page.url()}, step ${shotNo})`);
  });
  // Pages answer 200, 303 to the next page, or 400 with a form's errors
  // (chromium logs that 400 as a console error: not counted as one; the
  // form's action, /ask#errors, puts a fragment in the console's URL).
  page.on('response', async (r) => {
    const nav = r.request().isNavigationRequest();
    if (nav && r.frame() === page.mainFrame() && !(r.status() >= 300 && r.status() < 400))
      lastDocument.set(page, await r.allHeaders());
    if (nav && r.status() === 400)
      formErrorPages.add(r.url().split('#')[0]);
    if (nav ? ![200, 303, 400].includes(r.status()) : r.status() >= 400)
      failedRequests.push(`${who} ${r.url()}: HTTP ${r.status()}`);
  });
}

/* Screenshots the page and checks its width and its labels. */
async function visit(page, label) {
  await page.waitForLoadState('load');
  shotNo++;
  const file = path.join(cfg.shots, `${String(shotNo).padStart(2, '0')}-${label}.png`);
  await page.screenshot({ path: file, fullPage: true });
  seenPages.push(label);
  const where = `${label} (${new URL(page.url()).pathname})`;
  const [sw, cw] = await page.evaluate(() =>
    [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  if (sw > cw)
    problems.scroll.push(`${where}: scrollWidth ${sw} > clientWidth ${cw}`);
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, textarea, select')]
      .filter((e) => e.type !== 'hidden')
      .filter((e) => !(e.id && document.querySelector(`label[for="${CSS.escape(e.id)}"]`)) &&
        !(e.getAttribute('aria-label') || '').trim() && !e.getAttribute('aria-labelledby'))
      .map((e) => e.outerHTML.slice(0, 120)));
  for (const u of unlabelled)
    problems.labels.push(`${where}: ${u}`);
  // The accessibility tree: every form control has a name.
  let cdp = cdpSessions.get(page);
  if (!cdp) {
    cdp = await page.context().newCDPSession(page);
    cdpSessions.set(page, cdp);
  }
  const ax = await cdp.send('Accessibility.getFullAXTree');
  const controls = ['textbox', 'searchbox', 'combobox', 'listbox', 'checkbox', 'radio',
    'spinbutton', 'slider', 'switch', 'button'];
  for (const n of ax.nodes) {
    const role = n.role && n.role.value;
    if (n.ignored || !controls.includes(role))
      continue;
    if (!((n.name && n.name.value) || '').trim())
      problems.axnames.push(`${where}: a ${role} without an accessible name`);
  }
  await axeCheck(page, label);
  return file;
}

// --- axe-core ---------------------------------------------------------------
// The site's CSP (script-src 'self', no 'unsafe-inline') blocks an inline
// <script>, so page.addScriptTag({content}) cannot bring axe in, and the
// context's bypassCSP would switch the CSP off for the site's own code too,
// leaving the "nothing blocked by the Content-Security-Policy" check below
// with nothing to catch. axe.min.js is run instead with page.evaluate
// (DevTools' Runtime.evaluate, which no CSP governs, and which runs with
// the page's JavaScript disabled as well): the site is checked with its
// CSP on, as a client sees it.
const AXE_SOURCE = fs.readFileSync(createRequire(path.join(cfg.deps, 'package.json'))
  .resolve('axe-core/axe.min.js'), 'utf8');
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'];
const axeTally = { pages: 0, ms: 0 };
const AXE_TIMEOUT = 15000;     // one page's axe.run

// axe.run waits on promises and timers, which never settle in a page whose
// scripts are off (the phone's size; switching them on for a moment through
// DevTools does not take). There axe runs on a copy: the page's HTML as
// loaded (its DOM, which no script touched) served at its own URL, with the
// response's CSP, to one page of a second context of the same size with
// scripts on and the same cookies (axeCopyPage); the site's own scripts are
// not fetched for it (they would act: viewed.js records a view), its
// stylesheets and images are. That context is not watched: its requests
// are not the journey's.
let axeCopyPage = null;
const axeServed = { url: '', headers: {}, html: '' };    // what axeCopyPage is shown next
const lastDocument = new WeakMap();    // page -> the headers of its last document

/* axeCopyPage, showing what page shows. */
async function axeCopy(page) {
  if (!axeCopyPage) {
    const ctx = await page.context().browser().newContext({ viewport: { width: size.width, height: size.height },
      javaScriptEnabled: true, isMobile: false, hasTouch: false });
    ctx.setDefaultTimeout(STEP_TIMEOUT);
    axeCopyPage = await ctx.newPage();
    await axeCopyPage.route('**/*', (route) => {
      const r = route.request();
      if (r.isNavigationRequest() && r.url().split('#')[0] === axeServed.url)
        return route.fulfill({ status: 200, headers: axeServed.headers, body: axeServed.html });
      if (r.resourceType() === 'script' || r.method() !== 'GET')
        return route.abort();
      return route.continue();
    });
  }
  const ctx = axeCopyPage.context();
  await ctx.clearCookies();
  await ctx.addCookies(await page.context().cookies());
  const csp = (lastDocument.get(page) || {})['content-security-policy'];
  axeServed.url = page.url().split('#')[0];
  axeServed.headers = { 'content-type': 'text/html; charset=utf-8', ...(csp ? { 'content-security-policy': csp } : {}) };
  axeServed.html = await page.content();
  await axeCopyPage.goto(axeServed.url, { waitUntil: 'load' });
  return axeCopyPage;
}

/* Runs axe-core on the page as it is now: a TAP point "no serious or
 * critical axe violations on LABEL" (each such violation's id, impact,
 * targets and help in its detail); the moderate and minor ones printed as
 * comments. */
async function axeCheck(page, label) {
  const t0 = Date.now();
  const audited = size.javaScript ? page : await axeCopy(page);
  let found;
  try {
    await audited.evaluate(AXE_SOURCE);
    found = await audited.evaluate(async ([tags, limit]) => {
      const r = await Promise.race([
        window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] }),
        new Promise((resolve) => setTimeout(() => resolve(null), limit))]);
      return r && r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
        targets: v.nodes.map((n) => n.target.join(' ')) }));
    }, [AXE_TAGS, AXE_TIMEOUT]);
  } finally {
    axeTally.ms += Date.now() - t0;
  }
  if (!found) {
    ok(false, `no serious or critical axe violations on ${label}`, `axe.run did not finish in ${AXE_TIMEOUT} ms`);
    return;
  }
  axeTally.pages++;
  const say = (v) => `${v.id} (${v.impact}): ${v.help}; ${v.targets.length} element(s): ` +
    v.targets.slice(0, 5).join(', ') + (v.targets.length > 5 ? ', ...' : '');
  const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  ok(bad.length === 0, `no serious or critical axe violations on ${label}`, bad.map(say).join('\n'));
  for (const v of found.filter((x) => !bad.includes(x)))
    note(`axe on ${label}: ${say(v)}`);
}

/* The id of the focused element, and whether its focus is visible. */
async function focused(page) {
  return page.evaluate(() => {
    const e = document.activeElement;
    const s = getComputedStyle(e);
    const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
    return { id: e.id, tag: e.tagName.toLowerCase(), text: (e.textContent || '').trim().slice(0, 40),
      visible: e.matches(':focus-visible') && (outline || s.boxShadow !== 'none') };
  });
}

/* Presses Tab until the element with id is focused (at most max times),
 * checking that each focus on the way is visible. Returns true if found. */
async function tabTo(page, id, max = 20) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const f = await focused(page);
    if (!f.visible)
      problems.focus.push(`${new URL(page.url()).pathname}: <${f.tag} id="${f.id}"> ${f.text}`);
    if (f.id === id)
      return true;
  }
  return false;
}

/* Does action (a click or key press that submits a form or follows a
 * link), waits for the new page to load, and checks it is at want (a
 * path, or a RegExp for the path). */
async function go(page, action, want) {
  const nav = page.waitForEvent('framenavigated', { predicate: (fr) => fr === page.mainFrame() });
  await action();
  await nav;
  await page.waitForLoadState('load');
  const at = new URL(page.url()).pathname;
  if (want instanceof RegExp ? !want.test(at) : at !== want)
    throw new Stop(`expected to land on ${want}, but the page is ${page.url()}:\n` +
      (await page.locator('main').innerText().catch(() => '')));
}

/* Clicks "Send reply" on the order page; it asks first. With
 * JavaScript a confirm dialog (www/static/confirm.js) is accepted; without
 * it the site shows a confirmation page whose "Yes, send the reply" is
 * clicked (screenshot as label). Either way the reply is sent and the
 * page is orderPath. */
async function sendReply(page, orderPath, label = 'admin-reply-confirm') {
  let asked = '';
  const onDialog = (d) => { asked = d.message(); d.accept(); };
  page.once('dialog', onDialog);
  const confirmPath = orderPath + '/reply';
  await go(page, () => page.getByRole('button', { name: 'Send reply' }).click(),
    new RegExp('^(' + orderPath + '|' + confirmPath + ')$'));
  if (new URL(page.url()).pathname === confirmPath) {
    page.off('dialog', onDialog);
    await visit(page, label);
    ok(/Send this reply/.test(await page.locator('h1').innerText()) &&
      await page.locator('#preview').isVisible(),
      'without JavaScript, "Send reply" shows a confirmation page with the reply as the client will see it');
    await go(page, () => page.getByRole('button', { name: 'Yes, send the reply' }).click(), orderPath);
  } else {
    ok(/Send this reply/.test(asked), '"Send reply" asks for confirmation in a dialog first', asked);
  }
}

/* Sends the rating page's form (rating yes or no) on page: the POST is
 * answered 303 to the thank-you page, which says the rating was saved and
 * which a reload shows again without posting it again. */
async function rateAnswer(page, rating) {
  const button = rating === 'yes' ? 'Yes, I am happy with the answer' : 'Send my rating';
  const posted = page.waitForResponse((r) => r.request().method() === 'POST' && /\/rating$/.test(r.url()));
  const track = new URL(page.url()).pathname;
  await go(page, () => page.getByRole('button', { name: button }).click(), track);
  const post = await posted;
  await visit(page, `rating-${rating}-saved`);
  ok(post.status() === 303 && new URL(page.url()).search === `?rating=${rating}`,
    `rating "${rating}": the form's POST is answered 303 to the thank-you page`, `${post.status()} ${page.url()}`);
  ok(/Thanks \u2014 your rating was saved/.test(await page.locator('#rating-saved').innerText().catch(() => '')),
    `rating "${rating}": "Thanks \u2014 your rating was saved"`, await page.locator('main').innerText());
  let posts = 0;
  const count = (r) => { if (r.method() === 'POST') posts++; };
  page.on('request', count);
  const again = await page.reload();
  // Chromium asks for the favicon after the load; a navigation right
  // after would abort it (a failed request of the final checks).
  await page.waitForLoadState('networkidle');
  page.off('request', count);
  ok(posts === 0 && again.request().method() === 'GET' && await page.locator('#rating-saved').count() === 1,
    `rating "${rating}": a reload of the thank-you page posts nothing again`, `${posts} POST(s)`);
}

/* The dashboard's two CSV links (orders, ledger), fetched with the
 * consultant's session (not clicked: they download): each answers a CSV
 * whose header carries the columns. */
async function csvLinks(page) {
  const want = { '/admin/export.csv': ['number', 'topic', 'paid_at', 'refunded_at', 'payment_methods',
    'payment_references', 'refund_methods', 'refund_references', 'net', 'currency'],
  '/admin/export-ledger.csv': ['number', 'at', 'kind', 'amount', 'currency', 'method', 'reference'] };
  for (const [href, columns] of Object.entries(want)) {
    const link = page.locator(`a[href="${href}"]`);
    const got = await link.count() === 1 ? await page.request.get(cfg.base + href) : null;
    const head = got ? (await got.text()).split(/\r?\n/)[0].split(',').map((c) => c.replace(/^"|"$/g, '')) : [];
    ok(got && got.status() === 200 && /^text\/csv/.test(got.headers()['content-type'] || '') &&
      columns.every((c) => head.includes(c)),
    `the dashboard links to ${href}: a CSV with ${columns.join(', ')}`,
    got ? `${got.status()} ${got.headers()['content-type']}: ${head.join(',')}` : 'no such link');
  }
}

// --- mail -------------------------------------------------------------------
const mailSeen = new Set();

/* Waits for an email not seen before for which pred is true, waking
 * `pmbctl mail run` every second; returns it (to, subject, text, html). */
async function waitMail(pred, what) {
  const end = Date.now() + MAIL_TIMEOUT;
  let kicked = 0;
  const got = [];
  while (Date.now() < end) {
    const files = fs.readdirSync(cfg.mailDir).filter((f) => f.endsWith('.json')).sort();
    for (const f of files) {
      if (mailSeen.has(f))
        continue;
      const m = JSON.parse(fs.readFileSync(path.join(cfg.mailDir, f), 'utf8'));
      if (pred(m)) {
        mailSeen.add(f);
        return m;
      }
    }
    if (Date.now() - kicked > 1000) {
      try { process.kill(cfg.mailPid, 'SIGUSR1'); } catch { /* it may have ended */ }
      kicked = Date.now();
    }
    await sleep(100);
  }
  for (const f of fs.readdirSync(cfg.mailDir).filter((f) => f.endsWith('.json')).sort()) {
    const m = JSON.parse(fs.readFileSync(path.join(cfg.mailDir, f), 'utf8'));
    got.push(`${f}: to ${m.to.join(',')}: ${m.subject}`);
  }
  throw new Stop(`no email arrived: ${what}; the server has:\n${got.join('\n')}`);
}

const forClient = (re) => (m) => m.to.includes(cfg.clientEmail) && re.test(m.subject);
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/* The path of the first link to base + prefix in text, or null. */
function linkIn(text, prefix) {
  const m = new RegExp(esc(cfg.base) + '(' + esc(prefix) + '[A-Za-z0-9_-]+(\\?[a-z=]+)?)').exec(text);
  return m ? m[1] : null;
}

/* What the token of a /o/ or /r/ path says, but for the second it was
 * made and its MAC (version, key, purpose, subject, expiry), as text; ''
 * if there is none. Two links to one page made in different seconds
 * differ in their text, so the journey compares these. */
function linkToken(path) {
  const m = /\/[or]\/([A-Za-z0-9_-]{68})/.exec(path || '');
  if (!m) return '';
  const raw = Buffer.from(m[1], 'base64url');
  return [raw.subarray(0, 11), raw.subarray(15, 19)].map((b) => b.toString('hex')).join('-');
}

/* Screenshots an email's HTML part, as a mail program would show it. */
async function shootMail(browser, m, label) {
  const ctx = await browser.newContext({ viewport: { width: size.width, height: size.height },
    javaScriptEnabled: false, offline: true });
  const p = await ctx.newPage();
  await p.setContent(m.html, { waitUntil: 'load' });
  shotNo++;
  await p.screenshot({ path: path.join(cfg.shots, `${String(shotNo).padStart(2, '0')}-email-${label}.png`),
    fullPage: true });
  await ctx.close();
}

// --- the journey ------------------------------------------------------------
// The files attached to the question (tests/files/).
const QUESTION_FILES = ['sample.png', 'sample.pdf'].map((f) =>
  path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'files', f));
const QUESTION_LINES = [
  'I run a small bakery. Weekends sell out, but on weekdays half the sourdough is left.',
  'How do I get more people to try it on a Tuesday?',
];
const ANSWER = [
  'Thank you, Ada. Here are **three ideas** for weekday sourdough:',
  '',
  '- A *weekday loyalty card*: the fifth loaf is free.',
  '- A tasting board at the till on Tuesday mornings.',
  '- A standing order for the café next door.',
  '',
  'Start with the card: it costs little and you will see results within a month.',
].join('\n');
const QUOTE = 'Clear, practical ideas I could use the same week.';
const FOLLOWUP = 'Thank you! Should the loyalty card be on paper or in an app?';
const FOLLOWUP_ANSWER = 'Paper, to start with: it is **cheap and visible** at the till.';
const REASON = 'The ideas were fine, but I had tried most of them already.';
const MORE_INFO = 'One more thing: we also bake rye, and it sells out on Fridays.';
const EMAIL_FOLLOWUP = 'And should the card work for the rye too?';
const EMAIL_FOLLOWUP_ANSWER = 'Yes: one card for every loaf keeps it simple.';
const STRANGER = 'Please send the answer to collect@elsewhere.example instead.';
let replyNo = 0;
// Files (issue 19): the question's two, and the answer's worked example.
const A_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'files', 'sample.xlsx');

/* Clicks the link named name on page, which downloads a file; returns
 * its suggested name and bytes. */
async function download(page, name) {
  const link = page.locator('ul.files a', { hasText: name }).first();
  downloaded.add(new URL(await link.getAttribute('href'), page.url()).href);
  const [d] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const file = await d.path();
  return { name: d.suggestedFilename(), bytes: fs.readFileSync(file) };
}

/* Sends a reply to email m (its Reply-To, In-Reply-To its Message-ID)
 * from sender through `pmbctl mail receive`, as a mail server's pipe
 * would; the original quoted below, as Gmail writes it. Returns what
 * pmbctl printed. */
function replyByEmail(m, sender, text) {
  replyNo++;
  const to = /<([^>]+)>/.exec(m.replyTo) ? /<([^>]+)>/.exec(m.replyTo)[1] : m.replyTo;
  const quoted = m.text.split(/\r?\n/).map((l) => '> ' + l).join('\r\n');
  const raw = [`From: ${sender}`, `To: ${to}`, `Subject: Re: ${m.subject}`,
    `Message-ID: <journey.${size.label}.${replyNo}@client.example>`, `In-Reply-To: ${m.messageId}`,
    `References: ${m.messageId}`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '',
    text, '', 'On Mon, 7 Dec 2026 at 10:00, Sam Carter <sam@example.com> wrote:', quoted, ''].join('\r\n');
  return execFileSync(cfg.pmbctl, ['mail', 'receive'], { input: raw,
    env: { ...process.env, PMB_CONFIG: cfg.config } }).toString();
}
const FEEDBACK = 'I hoped for numbers: the margin other bakers take on a wedding cake.';

async function statusText(page) {
  return (await page.locator('#status').innerText()).trim();
}

async function main() {
  const t0 = Date.now();
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    // Playwright gives each launch a fresh --user-data-dir of its own.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  note(`${size.label}: chromium ${browser.version()}, ${size.width}x${size.height}, ` +
    `JavaScript ${size.javaScript ? 'on' : 'off'}`);
  const opts = { viewport: { width: size.width, height: size.height },
    javaScriptEnabled: size.javaScript, isMobile: false, hasTouch: false };
  const clientCtx = await browser.newContext(opts);
  const staffCtx = await browser.newContext(opts);
  clientCtx.setDefaultTimeout(STEP_TIMEOUT);
  staffCtx.setDefaultTimeout(STEP_TIMEOUT);
  {
    // Proves the setting took: a script on a scratch page runs or not.
    const probe = await clientCtx.newPage();
    await probe.setContent('<title>off</title><script>document.title = "on"</script>');
    ok(await probe.title() === (size.javaScript ? 'on' : 'off'),
      `JavaScript is ${size.javaScript ? 'on' : 'off'} in the browser`);
    await probe.close();
  }
  const client = await clientCtx.newPage();
  const staff = await staffCtx.newPage();
  watch(client, 'client');
  watch(staff, 'consultant');
  const base = cfg.base;
  try {
    await journey(browser, client, staff, base);
  } catch (e) {
    if (!(e instanceof Stop))
      ok(false, 'the journey went on without an error', e.stack || String(e));
    else if (!e.reported)
      ok(false, e.message.split('\n')[0], e.message.split('\n').slice(1).join('\n'));
    for (const [p, who] of [[client, 'client'], [staff, 'consultant']]) {
      try {
        const f = path.join(cfg.shots, `FAILED-${who}.png`);
        await p.screenshot({ path: f, fullPage: true });
        note(`where it stopped, the ${who}'s page ${p.url()}: ${f}`);
      } catch { /* the page may be gone */ }
    }
  }
  // What held on every page of the run.
  const n = seenPages.length;
  ok(problems.scroll.length === 0, `no horizontal scrolling on any of the ${n} pages`,
    problems.scroll.join('\n'));
  ok(problems.labels.length === 0, `every input, textarea and select has a <label for> or aria-label (${n} pages)`,
    problems.labels.join('\n'));
  ok(problems.axnames.length === 0, `every form control has an accessible name in the accessibility tree (${n} pages)`,
    problems.axnames.join('\n'));
  ok(problems.focus.length === 0, 'keyboard focus is visible on every element tabbed to',
    problems.focus.join('\n'));
  note(`axe-core ran on ${axeTally.pages} pages in ${(axeTally.ms / 1000).toFixed(1)} s`);
  // Chromium asks the stand-in for its /favicon.ico (a 404) by itself.
  const errors = consoleErrors.filter((e) =>
    !(formErrorPages.has(e.url.split('#')[0]) && /^(client|consultant) \S+: Failed to load resource: .* status of 400/.test(e.text)) &&
    e.url !== cfg.stripe + '/favicon.ico');
  ok(errors.length === 0, 'no console errors', errors.map((e) => e.text).join('\n'));
  ok(cspBlocked.length === 0, 'nothing blocked by the Content-Security-Policy', cspBlocked.join('\n'));
  ok(failedRequests.length === 0, `no failed request (of ${requests})`, failedRequests.join('\n'));
  ok(offOrigin.length === 0 && mixed.length === 0,
    'no mixed content: every request went to the site\'s own origin',
    offOrigin.concat(mixed).join('\n'));
  await browser.close();
  note(`${size.label}: ${shotNo} screenshots in ${cfg.shots}; ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

async function journey(browser, client, staff, base) {
  // 1. The offer, then the question form: keyboard only, one mistake.
  await client.goto(base + '/');
  await visit(client, 'offer');
  must(await client.getByRole('link', { name: 'Ask your question' }).first().isVisible(),
    'the offer page shows the "Ask your question" button');
  ok(/money-back guarantee/i.test(await client.locator('main').innerText()),
    'the offer page states the money-back guarantee');
  await go(client, () => client.getByRole('link', { name: 'Read the terms' }).first().click(), '/terms');
  await visit(client, 'terms');
  ok(/money back in full within \d+ days/.test(await client.locator('main').innerText()),
    'the terms page states the guarantee and its window');
  await client.goto(base + '/');
  await go(client, () => client.getByRole('link', { name: 'Ask your question' }).first().click(), '/ask');
  await visit(client, 'ask');

  const name = 'Ada Baker';
  must(await tabTo(client, 'name'), 'keyboard: Tab reaches the name field');
  await client.keyboard.type(name);
  must(await tabTo(client, 'email', 1), 'keyboard: Tab moves on to the email field');
  await client.keyboard.type('ada at bakery');            // the mistake
  must(await tabTo(client, 'company', 1), 'keyboard: then the business field');
  await client.keyboard.type("Ada's Bakery");
  must(await tabTo(client, 'website', 1), 'keyboard: then the website field');
  await client.keyboard.type('adasbakery.example');
  must(await tabTo(client, 'topic', 1), 'keyboard: then the topic list');
  await client.keyboard.type('Getting customers');
  must(await tabTo(client, 'question', 1), 'keyboard: then the question');
  await client.keyboard.type(QUESTION_LINES[0]);
  await client.keyboard.press('Enter');
  await client.keyboard.type(QUESTION_LINES[1]);
  // A PNG and a PDF with the question (issue 19).
  must(await tabTo(client, 'files', 1), 'keyboard: then the files field');
  await client.locator('#files').setInputFiles(QUESTION_FILES);
  must(await tabTo(client, 'agree', 1), 'keyboard: then the agreement, skipping the honeypot');
  await client.keyboard.press('Space');
  ok(await client.locator('#agree').isChecked(), 'keyboard: Space ticks the agreement');
  await client.keyboard.press('Tab');
  const terms = await focused(client);
  ok(terms.tag === 'a' && /terms/i.test(terms.text), 'keyboard: Tab reaches the consent line\'s link to the terms', terms);
  await client.keyboard.press('Tab');
  const notice = await focused(client);
  ok(notice.tag === 'a' && notice.id === 'privacy-link',
    'keyboard: then its link to the privacy notice (issue 20)', notice);
  await client.keyboard.press('Tab');
  const f = await focused(client);
  must(f.tag === 'button' && /Send my question/.test(f.text), 'keyboard: Tab reaches "Send my question"', f);
  await visit(client, 'ask-filled-by-keyboard');
  await go(client, () => client.keyboard.press('Enter'), '/ask');
  await visit(client, 'ask-error');
  ok(await client.evaluate(() => document.activeElement && document.activeElement.id) === 'errors' &&
    new URL(client.url()).hash === '#errors',
  'the error summary takes focus, and the URL carries #errors', client.url());
  ok(await client.locator('#errors a[href="#email"]').count() === 1, 'the summary links to the email field');
  const sb = await client.locator('#errors').boundingBox();
  ok(sb && sb.y >= 0 && sb.y < size.height && await client.locator('#errors li').count() === 1,
    'the error summary is on screen and lists the one problem', JSON.stringify(sb));

  // The error beside its field, everything typed kept.
  const err = client.locator('#email-error');
  must(await err.isVisible(), 'the mistake is shown: an error under the email field',
    await client.locator('main').innerText());
  const eb = await client.locator('#email').boundingBox();
  const xb = await err.boundingBox();
  ok(eb && xb && xb.y >= eb.y && xb.y - (eb.y + eb.height) < 80,
    'the error sits right beside the email field', { eb, xb });
  ok(await client.locator('.field.invalid #email').count() === 1 &&
    await client.locator('#email').getAttribute('aria-invalid') === 'true',
  'the email field is marked invalid');
  ok(await client.locator('.field.invalid').count() === 1, 'only the email field is marked invalid');
  const kept = {
    name: await client.locator('#name').inputValue(),
    email: await client.locator('#email').inputValue(),
    company: await client.locator('#company').inputValue(),
    website: await client.locator('#website').inputValue(),
    topic: await client.locator('#topic').inputValue(),
    question: (await client.locator('#question').inputValue()).replace(/\r\n/g, '\n'),
    agree: await client.locator('#agree').isChecked(),
  };
  ok(kept.name === name && kept.email === 'ada at bakery' && kept.company === "Ada's Bakery" &&
    kept.website === 'adasbakery.example' && kept.topic === 'Getting customers' &&
    kept.question === QUESTION_LINES.join('\n') && kept.agree,
  'everything typed is kept, the mistake included', JSON.stringify(kept, null, 1));
  ok(await client.locator('#files-again').isVisible() &&
    /choose them again/.test(await client.locator('#files-again').innerText()),
  'the files field says the files must be chosen again');
  await client.locator('#files').setInputFiles(QUESTION_FILES);

  // Corrected by keyboard, sent with Enter from the email field.
  must(await tabTo(client, 'email'), 'keyboard: Tab reaches the email field again');
  await client.keyboard.press('Control+A');
  await client.keyboard.type(cfg.clientEmail);
  await go(client, () => client.keyboard.press('Enter'), /\/o\/[A-Za-z0-9_-]+$/);
  const statusPath = new URL(client.url()).pathname;
  await visit(client, 'status-received');
  must(/Received/.test(await statusText(client)), 'the client lands on the status page: "Received"',
    await statusText(client));
  const qfiles = client.locator('.msg.question .files a:not(:has(img))');
  ok(await qfiles.count() === 2 && /sample\.png/.test(await qfiles.nth(0).innerText()) &&
    /sample\.pdf/.test(await qfiles.nth(1).innerText()),
  'the status page lists the question\'s PNG and PDF', await client.locator('main').innerText());
  ok(await client.locator('.msg.question img.thumb').evaluate((img) => img.complete && img.naturalWidth > 0),
    'the PNG is shown as a thumbnail');
  const number = (/Order (\S+)/.exec(await client.locator('.eyebrow').first().textContent()) || [])[1];
  must(!!number, `the status page names the order: ${number}`);
  ok(/Hello Ada Baker/.test(await client.locator('h1').innerText()), 'it greets the client by name');
  ok(await client.locator('#payment').isVisible(), 'it shows how to pay');
  ok((await client.locator('.thread').innerText()).includes(QUESTION_LINES[1]), 'it shows the question');
  const emailed = await client.locator('#emailed').innerText().catch(() => '');
  ok(emailed.includes(`We have emailed this page's link to ${cfg.clientEmail} \u2014 keep it`),
    'right after asking, it says "We have emailed this page\'s link to ADDRESS \u2014 keep it"', emailed);
  const progress = await client.locator('.timeline').locator('..').innerText();
  ok(/I start the \d+ hours as soon as your payment arrives/.test(await client.locator('#clock').innerText()) &&
    !/promised by/.test(progress),
  'unpaid: no due date; the page says the clock starts when the payment arrives', progress);

  // 2. The confirmation email: its link opens the same page.
  const conf = await waitMail(forClient(/is in/), 'the confirmation');
  ok(conf.subject.includes(number), `the confirmation email arrived at the SMTP server, naming the order: "${conf.subject}"`);
  const confLink = linkIn(conf.text, '/o/');
  // Made at another moment of the same request (a token carries its second).
  must(!!confLink && linkToken(confLink) !== '' && linkToken(confLink) === linkToken(statusPath),
    'its link is the status page\'s', `${confLink} vs ${statusPath}`);
  ok(conf.html.includes(base + confLink), 'the HTML part carries the same link');
  await shootMail(browser, conf, 'confirmation');
  await client.goto(base + confLink);
  await visit(client, 'status-from-email');
  must(/Received/.test(await statusText(client)) && (await client.locator('.eyebrow').first().textContent()).includes(number),
    'the link from the email opens the same status page');
  ok(await client.locator('#emailed').count() === 0, 'the "we have emailed" notice was shown once: not on the email\'s link');

  // 3. The consultant signs in, finds the order, marks it paid.
  await staff.goto(base + '/admin/login');
  await visit(staff, 'admin-login');
  await staff.getByLabel('Username').fill(cfg.user);
  await staff.getByLabel('Password').fill(cfg.password);
  await go(staff, () => staff.getByRole('button', { name: 'Sign in' }).click(), '/admin');
  await visit(staff, 'admin-queue');
  ok(await staff.getByRole('button', { name: /Sign out/i }).count() === 1, 'the consultant is signed in');
  const filters = (await staff.locator('.filters').innerText()).replace(/\s+/g, ' ');
  ok(/Waiting 0 Received, waiting for payment 1 Paid, being answered 0\b/.test(filters),
    'the queue\'s filters carry their counts: "Waiting 0", "Received, waiting for payment 1"', filters);
  const waiting = await staff.locator('main').innerText();
  ok(!/All caught up/.test(waiting) &&
    /^1 order awaits payment$/.test(await staff.locator('#still-waiting a[href="/admin?status=awaiting_payment"]')
      .innerText().catch(() => '')),
  'the default view does not say "All caught up" while an order waits for payment: "Still waiting: 1 order..."',
  waiting);
  await staff.goto(base + '/admin/dashboard');
  await visit(staff, 'admin-dashboard-unpaid');
  const unpaid = await staff.locator('#unpaid tbody tr').evaluateAll((rows) =>
    rows.map((r) => [...r.cells].map((c) => c.textContent.trim())));
  ok(unpaid.length === 1 && unpaid[0][1] === '1' && /^\d+\.\d\d$/.test(unpaid[0][2]),
    'the dashboard shows the unpaid order: its count and value', JSON.stringify(unpaid));
  ok(/\(0 of 1 orders paid\)/.test(await staff.locator('#conversion').innerText()),
    'and the conversion from asked to paid: 0 of 1', await staff.locator('#conversion').innerText());
  await csvLinks(staff);
  await staff.goto(base + '/admin?status=awaiting_payment');
  await visit(staff, 'admin-queue-awaiting-payment');
  const row = staff.locator('table.queue tr', { hasText: number });
  must(await row.count() === 1, `the order ${number} is in the queue under "awaiting payment"`);
  await go(staff, () => row.getByRole('link', { name: number }).click(), /\/admin\/orders\/\d+$/);
  const orderPath = new URL(staff.url()).pathname;
  await visit(staff, 'admin-order');
  ok((await staff.locator('main').innerText()).includes(QUESTION_LINES[0]), 'the order page shows the question');
  ok(await staff.locator('.thread ul.files li').count() === 2, 'and the question\'s two files',
    await staff.locator('.thread').innerText());
  const qPdf = await download(staff, 'sample.pdf');
  ok(qPdf.name === 'sample.pdf' && qPdf.bytes.equals(fs.readFileSync(QUESTION_FILES[1])),
    'the consultant opens the PDF: the very bytes the client sent', qPdf.name);
  const amount = await staff.locator('#amount').inputValue();
  ok(/^\d+\.\d\d$/.test(amount), `the amount to mark paid is filled in: ${amount}`);
  await staff.locator('#method').selectOption('bank_transfer');
  await staff.locator('#reference').fill(number);
  await go(staff, () => staff.getByRole('button', { name: 'Mark paid' }).click(), orderPath);
  await visit(staff, 'admin-order-paid');
  must(/Paid/.test(await statusText(staff)), 'the order is marked paid', await statusText(staff));
  const paidMail = await waitMail(forClient(/Payment received/), 'the payment receipt');
  ok(paidMail.subject.includes(number) && paidMail.text.includes(amount),
    `the client is emailed that the payment of ${amount} arrived`, paidMail.text);
  ok(paidMail.text.startsWith('-- Reply above this line --') && /^answers\+[a-z2-7]{26}@example\.com$/.test(
    (/<([^>]+)>/.exec(paidMail.replyTo) || [])[1] || paidMail.replyTo),
  'the email says where to reply above, and its Reply-To names the order', paidMail.replyTo);
  // The client answers that email with more information, before the answer.
  const said = replyByEmail(paidMail, cfg.clientEmail, MORE_INFO);
  ok(/more information/.test(said), 'the client\'s reply by email is taken: ' + said.trim());
  await staff.goto(base + orderPath);
  await visit(staff, 'admin-order-info-by-email');
  const infoThread = await staff.locator('.thread').innerText();
  ok(infoThread.includes(MORE_INFO) && /More information from the client/.test(infoThread) && /by email/.test(infoThread),
  'the order page shows the reply as more information from the client, by email',
  await staff.locator('.thread').innerText());
  const infoMail = await waitMail((m) => m.to.includes('consultant@example.com') && /More information/.test(m.subject),
    'the consultant\'s alert of more information');
  ok(infoMail.text.includes(MORE_INFO), `the consultant is alerted: "${infoMail.subject}"`);
  await client.goto(base + statusPath);
  ok((await client.locator('.thread').innerText()).includes(MORE_INFO),
    'the client\'s status page shows what they sent by email');
  // A stranger's mail to the same Reply-To waits in the inbox.
  ok(/inbox/.test(replyByEmail(paidMail, 'someone@elsewhere.example', STRANGER)),
    'a stranger\'s mail to the order\'s Reply-To goes to the inbox');
  ok(!(await client.locator('main').innerText()).includes('collect@elsewhere'),
    'and never onto the client\'s status page');
  await staff.goto(base + '/admin/inbox');
  await visit(staff, 'admin-inbox');
  const inRow = staff.locator('table.inbox tr', { hasText: 'someone@elsewhere.example' });
  must(await inRow.count() === 1 && /not the order's client/.test(await inRow.innerText()),
    'the consultant\'s inbox lists it, saying why it is there', await staff.locator('main').innerText());
  await go(staff, () => inRow.getByRole('link').first().click(), /^\/admin\/inbox\/\d+$/);
  await visit(staff, 'admin-inbox-message');
  ok((await staff.locator('#text').innerText()).includes(STRANGER) && (await staff.locator('#suggested').innerText())
    .includes(number), 'the message opens: its text, and the order its address names', await staff.locator('main').innerText());
  await go(staff, () => staff.getByRole('button', { name: 'Discard this message' }).click(), /^\/admin\/inbox/);
  await visit(staff, 'admin-inbox-discarded');
  ok(await staff.locator('table.inbox tr', { hasText: 'someone@elsewhere.example' }).count() === 0,
    'discarded, it leaves the inbox', await staff.locator('main').innerText());
  await staff.goto(base + orderPath);

  // The Markdown answer, with a worked example: saved and previewed, then sent.
  await staff.locator('#body').fill(ANSWER);
  await staff.setInputFiles('#reply-files', A_FILE);
  await go(staff, () => staff.getByRole('button', { name: 'Save and preview' }).click(),
    new RegExp('^' + orderPath + '(/draft)?$'));
  await visit(staff, 'admin-reply-preview');
  const preview = staff.locator('#preview');
  must(await preview.isVisible(), '"Save and preview" shows a preview');
  ok(new URL(staff.url()).hash === '#preview', '"Save and preview" lands on the preview (#preview)', staff.url());
  ok(await preview.locator('strong', { hasText: 'three ideas' }).count() === 1 &&
    await preview.locator('li').count() === 3 && await preview.locator('em').count() === 1,
  'the preview is formatted Markdown (bold, a list, italics)', await preview.innerHTML());
  ok((await staff.locator('#body').inputValue()).replace(/\r\n/g, '\n') === ANSWER,
    'the draft is kept in the editor');
  ok((await staff.locator('main').innerText()).includes('sample.xlsx'), 'the draft keeps its file, listed',
    await staff.locator('main').innerText());
  await sendReply(staff, orderPath);
  await visit(staff, 'admin-reply-sent');
  must(/Answered/.test(await statusText(staff)), 'the reply is sent: the order is answered', await statusText(staff));

  // 4. The client reads the formatted answer; the answer email.
  await client.goto(base + statusPath);
  await visit(client, 'status-answered');
  must(/Answered/.test(await statusText(client)), 'the client\'s status page says "Answered"');
  const aFile = await download(client, 'sample.xlsx');
  ok(aFile.name === 'sample.xlsx' && aFile.bytes.equals(fs.readFileSync(A_FILE)),
    'the client downloads the answer\'s file, byte for byte', aFile.name);
  const answer = client.locator('.thread .answer').first();
  ok(await answer.locator('strong', { hasText: 'three ideas' }).count() === 1 &&
    await answer.locator('li').count() === 3, 'the client sees the answer formatted', await answer.innerHTML());
  // The first view is recorded by the page's script (www/static/viewed.js,
  // POST /o/TOKEN/viewed), never by fetching the page: without JavaScript
  // it stays "not yet" until the client rates or asks a follow-up.
  let viewed = '';
  for (let i = 0; i < 25; i++) {
    await staff.goto(base + orderPath);
    viewed = (await staff.locator('#viewed').innerText()).trim();
    if (viewed !== 'not yet' || !size.javaScript) break;
    await sleep(200);
  }
  if (size.javaScript)
    ok(/\d/.test(viewed), 'the consultant sees when the client first viewed the answer (sent by the page\'s script)', viewed);
  else
    ok(viewed === 'not yet', 'without JavaScript, opening the page records no view (as a mail scanner\'s GET)', viewed);
  const ansMail = await waitMail(forClient(/Your answer is ready/), 'the answer');
  ok(ansMail.subject.includes(number), `the answer email arrived, naming the order: "${ansMail.subject}"`);
  ok(ansMail.text.includes('three ideas'), 'it carries the answer');
  ok(/sample\.xlsx/.test(ansMail.text) && new RegExp(esc(base) + '/o/[A-Za-z0-9_-]+/files/\\d+').test(ansMail.text),
    'and lists the answer\'s file with its download link (never attached)', ansMail.text);
  const refundLink = linkIn(ansMail.text, '/r/');
  must(!!refundLink, 'it carries the refund link (/r/...)', ansMail.text);
  // The text part: each link on a line of its own; the HTML part: buttons.
  // (The parts arrive as sent, with CRLF.)
  const yesLink = (new RegExp(`Happy with the answer\\?.*\\s+${esc(base)}(/o/[A-Za-z0-9_-]+\\?rating=yes)\r?\n`)
    .exec(ansMail.text) || [])[1];
  ok(!!yesLink && /Get your money back:\s+\S*\/r\/\S+\r?\n/.test(ansMail.text) &&
    ansMail.html.includes('>Yes, thanks</a>') && ansMail.html.includes('>Get my money back</a>'),
  'it asks "Happy with the answer?" with a "yes" link and a "money back" link (buttons in HTML)', ansMail.text);
  ok(ansMail.html.includes(base + refundLink), 'the HTML part carries the refund link too');
  await shootMail(browser, ansMail, 'answer');
  if (yesLink) {
    await client.goto(base + yesLink);
    await visit(client, 'rating-yes');
    ok(await client.getByRole('button', { name: /happy with the answer/ }).isVisible() &&
      (await client.locator('main').textContent()).includes(number),
    'the "yes" link opens the "happy with the answer?" page of this order');
    // The rating, then "May I quote you?": shown once both consent.
    const statusAt = yesLink.split('?')[0];
    await rateAnswer(client, 'yes');
    await client.getByLabel(/What would you tell another business owner/).fill(QUOTE);
    await client.getByLabel('You may quote me on your website').check();
    await go(client, () => client.getByRole('button', { name: 'Send', exact: true }).click(), statusAt);
    await visit(client, 'quote-sent');
    ok((await client.locator('main').innerText()).includes('Thank you — I will read your words'),
      'the client lets the consultant quote them, and is thanked');
    await staff.goto(base + '/admin/testimonials');
    await visit(staff, 'admin-testimonials');
    const quoteRow = staff.locator('article.testimonial', { hasText: QUOTE });
    must(await quoteRow.count() === 1, 'the consultant sees the quote waiting', await staff.locator('main').innerText());
    await go(staff, () => quoteRow.getByRole('button', { name: 'Approve' }).click(), '/admin/testimonials');
    await client.goto(base + '/');
    await visit(client, 'offer-with-quote');
    ok((await client.locator('.proof').innerText()).includes(QUOTE), 'once approved, the quote is on the offer page');
  }

  // 5. The one included follow-up, and its answer.
  await client.goto(base + statusPath);
  await client.getByLabel('Your follow-up question').fill(FOLLOWUP);
  await go(client, () => client.getByRole('button', { name: 'Send my follow-up' }).click(), statusPath);
  await visit(client, 'status-followup-sent');
  must(/Follow-up/.test(await statusText(client)), 'the client sends the follow-up', await statusText(client));
  const sent = client.locator('#notice');
  const [nb, tb] = [await sent.boundingBox(), await client.locator('.timeline').boundingBox()];
  ok(/Your follow-up question was sent/.test(await sent.innerText().catch(() => '')) && nb && tb && nb.y < tb.y &&
    new URL(client.url()).hash === '#notice',
  'a clear confirmation at the top: "Your follow-up question was sent" (#notice), above the progress',
  `${client.url()} ${JSON.stringify([nb, tb])}`);
  ok(await client.locator('#followup').count() === 0, 'the follow-up form is gone (one is included)');

  await staff.goto(base + '/admin');
  await visit(staff, 'admin-queue-followup');
  const frow = staff.locator('table.queue tr', { hasText: number });
  must(await frow.count() === 1 && /follow-up/.test(await frow.innerText()),
    'the consultant sees the follow-up in the queue', await staff.locator('main').innerText());
  const fcounts = (await staff.locator('.filters').innerText()).replace(/\s+/g, ' ');
  ok(/Waiting 1 Received, waiting for payment 0 .*Follow-up being answered 1\b/.test(fcounts),
    'the queue counts it: "Waiting 1", "Follow-up being answered 1", and no order awaits payment', fcounts);
  await go(staff, () => frow.getByRole('link', { name: number }).click(), orderPath);
  ok((await staff.locator('.thread').innerText()).includes(FOLLOWUP), 'the order page shows the follow-up');
  await staff.locator('#body').fill(FOLLOWUP_ANSWER);
  await sendReply(staff, orderPath, 'admin-followup-confirm');
  await visit(staff, 'admin-followup-answered');
  must(/Answered/.test(await statusText(staff)), 'the consultant answers the follow-up');
  const fuMail = await waitMail(forClient(/answered your follow-up/), 'the follow-up\'s answer');
  ok(fuMail.subject.includes(number), `the follow-up's answer is emailed: "${fuMail.subject}"`);
  await client.goto(base + statusPath);
  await visit(client, 'status-followup-answered');
  ok(await client.locator('.thread .answer strong', { hasText: 'cheap and visible' }).count() === 1,
    'the client sees the follow-up\'s answer');

  // 5b. The second follow-up, by replying to the follow-up's answer email.
  ok(/follow-up/.test(replyByEmail(fuMail, cfg.clientEmail, EMAIL_FOLLOWUP)),
    'the client replies to the answer email: a follow-up by email');
  await staff.goto(base + '/admin');
  await visit(staff, 'admin-queue-followup-by-email');
  must(await staff.locator('table.queue tr', { hasText: number }).count() === 1,
    'the follow-up by email puts the order back in the queue', await staff.locator('main').innerText());
  await staff.goto(base + orderPath);
  await visit(staff, 'admin-order-followup-by-email');
  const thread = await staff.locator('.thread').innerText();
  ok(thread.includes(EMAIL_FOLLOWUP) && /by email/.test(thread) && /Follow-up being answered/.test(await statusText(staff)),
    'the order page shows the follow-up that came by email', thread);
  await staff.locator('#body').fill(EMAIL_FOLLOWUP_ANSWER);
  await sendReply(staff, orderPath, 'admin-followup2-confirm');
  must(/Answered/.test(await statusText(staff)), 'the consultant answers it', await statusText(staff));
  await client.goto(base + statusPath);
  await visit(client, 'status-followup-by-email');
  ok((await client.locator('.thread').innerText()).includes(EMAIL_FOLLOWUP) &&
    (await client.locator('.thread').innerText()).includes('one card for every loaf'),
  'the client\'s status page shows the follow-up sent by email and its answer');

  // 6. The refund, from the link in the answer email.
  await client.goto(base + refundLink);
  await visit(client, 'refund');
  ok((await client.locator('main').innerText()).includes(amount), `the refund page shows the amount (${amount})`);
  await client.getByLabel(/What could have been better/).fill(REASON);
  const refundButton = client.getByRole('button', { name: 'Refund my payment' });
  must(await refundButton.count() === 1, 'the refund page has the "Refund my payment" button');
  await go(client, () => refundButton.click(), refundLink);
  await visit(client, 'refund-requested');
  must(/Refund requested/.test(await client.locator('#request').innerText()),
    'the client has asked for the refund', await client.locator('main').innerText());
  const askedMail = await waitMail(forClient(/refund request .* is in/), 'the refund request\'s receipt');
  ok(askedMail.subject.includes(number) && askedMail.text.includes(amount),
    `the refund request of ${amount} is acknowledged by email`, askedMail.text);

  await staff.goto(base + '/admin/refunds');
  await visit(staff, 'admin-refunds');
  const req = staff.locator('section.refund-request', { hasText: number });
  must(await req.count() === 1, 'the consultant sees the request under refunds');
  ok((await req.innerText()).includes(REASON), 'with the client\'s reason');
  ok((await req.locator('.refund-net').innerText()).startsWith(amount + ' '),
    `and the net amount paid: ${amount}`, await req.locator('.refund-net').innerText());
  ok((await req.locator('.refund-paid-by').innerText()).startsWith('Bank transfer'),
    'the request says how the order was paid (Paid by: Bank transfer, the reference)',
    await req.locator('.refund-paid-by').innerText());
  ok((await req.locator('.refund-paid-by .ref').innerText()) === number,
    `with the payment's reference: ${number}`, await req.locator('.refund-paid-by').innerText());
  must(await req.getByLabel('Method').inputValue() === 'bank_transfer',
    'the refund\'s method starts at the way the order was paid: bank_transfer');
  await go(staff, () => req.getByRole('button', { name: 'Mark refunded' }).click(), /\/admin\/refunds/);
  await visit(staff, 'admin-refunded');
  must(await staff.locator('section.refund-request', { hasText: number }).count() === 0,
    'the consultant marks it refunded: the request is closed');

  await client.goto(base + statusPath);
  await visit(client, 'status-refunded');
  must(/Refunded/.test(await statusText(client)), 'the client\'s status page shows "Refunded"',
    await statusText(client));
  const guarantee = await client.locator('.guarantee-note').innerText();
  ok(/has been refunded/.test(guarantee) && !/not happy/i.test(guarantee),
    'its guarantee section says the payment was refunded, and offers no more refund', guarantee);
  const receipt = await waitMail(forClient(/has been refunded/), 'the refund receipt');
  ok(/refunded/i.test(receipt.text) && receipt.text.includes(amount),
    `the receipt email arrived: "${receipt.subject}"`, receipt.text);

  // 7. A second order, paid by card and refunded to the card.
  await cardOrder(browser, client, staff, base, amount);

  // 8. The dashboard: two orders, two refunds, nothing earned.
  const dash = await staff.goto(base + '/admin/dashboard');
  must(dash.status() === 200, 'the dashboard opens', dash.status());
  await visit(staff, 'admin-dashboard');
  ok((await staff.locator('#orders').innerText()).trim() === '2', 'the dashboard counts two orders',
    await staff.locator('#orders').innerText());
  ok(/\(2 of 2 paid orders\)/.test(await staff.locator('#refund-rate').innerText()),
    'the dashboard counts two refunds', await staff.locator('#refund-rate').innerText());
  const rev = await staff.locator('#revenue tbody tr').evaluateAll((rows) =>
    rows.map((r) => [...r.cells].map((c) => c.textContent.trim())));
  // Split by method (currency, method, payments, refunds, net), then
  // the currency's total.
  const both = (2 * Number(amount)).toFixed(2);
  const want = [['Bank transfer', amount], ['Card', amount], ['All methods', both]];
  ok(rev.length === 3 && want.every(([method, sum], i) => rev[i][1] === method &&
    rev[i][2].startsWith(sum) && rev[i][3].startsWith(sum) && /^0\.00\b/.test(rev[i][4])),
  `revenue by method: ${amount} by bank transfer and ${amount} by card, each refunded; net 0`,
  JSON.stringify(rev));
  const months = await staff.locator('#months tbody tr').evaluateAll((rows) =>
    rows.map((r) => [...r.cells].map((c) => c.textContent.trim())));
  const now = new Date();
  const thisMonth = 'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split(' ')[now.getUTCMonth()] + ' ' +
    now.getUTCFullYear();
  ok(months.length === 12 && months[0][0] === thisMonth && months[0][2].startsWith(both) &&
    months[0][3].startsWith(both) && /^0\.00\b/.test(months[0][4]) &&
    months.slice(1).every((m) => /^0\.00\b/.test(m[2]) && /^0\.00\b/.test(m[3])),
  `revenue by month: the last 12, newest first; ${thisMonth}: ${both} paid and refunded, net 0`,
  JSON.stringify(months.slice(0, 2)));
  ok(/\(2 of 2 orders paid\)/.test(await staff.locator('#conversion').innerText()) &&
    /No order awaits payment/.test(await staff.locator('#unpaid').innerText()),
  'asked to paid: 2 of 2; no order awaits payment', await staff.locator('#conversion').innerText());

  // 9. Search: the order's number as #N goes straight to it; a word's
  // beginning finds the order among results.
  await staff.goto(base + '/admin/search');
  await visit(staff, 'admin-search');
  await staff.getByLabel('Words to find').fill('sourd');
  await go(staff, () => staff.getByRole('button', { name: 'Search' }).click(), '/admin/search');
  await visit(staff, 'admin-search-results');
  ok(await staff.locator('ol.results li', { hasText: number }).count() === 1,
    `searching "sourd" (a word's beginning) finds ${number} ("sourdough")`, await staff.locator('main').innerText());
  const hashNumber = '#' + Number(number.replace(/\D/g, ''));
  await staff.getByLabel('Words to find').fill(hashNumber);
  await go(staff, () => staff.getByRole('button', { name: 'Search' }).click(), /^\/admin\/orders\/\d+$/);
  await visit(staff, 'admin-search-number');
  ok((await staff.locator('main').innerText()).includes(number), `searching "${hashNumber}" goes straight to ${number}`,
    staff.url());

  // 10. The outbox: the emails of the journey, one opened as text.
  const box = await staff.goto(base + '/admin/outbox');
  must(box.status() === 200, 'the outbox opens', box.status());
  await visit(staff, 'admin-outbox');
  const answerRow = staff.locator('tr', { hasText: 'Your answer is ready' }).first();
  must(await answerRow.count() === 1, 'the outbox lists the answer email');
  await go(staff, () => answerRow.getByRole('link', { name: /Your answer is ready/ }).click(), /^\/admin\/outbox\/\d+$/);
  await visit(staff, 'admin-outbox-email');
  const mailText = await staff.locator('#text').innerText();
  ok(/Here is my answer/.test(mailText) && await staff.locator('#headers').isVisible(),
    'an email of the outbox opens: its headers and its plain text', mailText.slice(0, 200));
  // 11. The pages this journey has no step on, screenshot and checked too.
  for (const [page, where, label] of [[client, '/lost', 'lost'], [staff, '/admin/snippets', 'admin-snippets'],
    [staff, '/admin/audit', 'admin-audit']]) {
    const res = await page.goto(base + where);
    ok(res.status() === 200, `${page === client ? 'the client' : 'the consultant'} opens ${where}`, res.status());
    await visit(page, label);
  }
  await go(staff, () => staff.getByRole('button', { name: /Sign out/i }).click(), /\/admin/);
  await visit(staff, 'admin-signed-out');
}

/* Steers the Stripe stand-in (POST /_control, from node: not the
 * browser's request); returns its result. */
async function standin(action, args = {}) {
  const r = await fetch(cfg.stripe + '/_control', { method: 'POST',
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ action, ...args }) });
  const out = await r.json();
  if (r.status !== 200)
    throw new Stop(`the stand-in refused ${action}: ${out.error}`);
  return out.result;
}

/* Wakes `pmbctl pay run` (SIGUSR1) until the stand-in holds a refund;
 * returns it, or null after REFUND_TIMEOUT. */
async function waitStripeRefund() {
  const end = Date.now() + REFUND_TIMEOUT;
  while (Date.now() < end) {
    try { process.kill(cfg.payPid, 'SIGUSR1'); } catch { /* it may have ended */ }
    await sleep(200);
    const refunds = (await standin('state')).refunds;
    if (refunds.length > 0)
      return refunds[0];
  }
  return null;
}

/* Reloads the client's status page at statusPath until it says
 * "Refunded"; returns whether it did in time. */
async function waitRefunded(page, statusPath) {
  const end = Date.now() + REFUND_TIMEOUT;
  while (Date.now() < end) {
    await page.goto(cfg.base + statusPath);
    if (/Refunded/.test(await statusText(page)))
      return true;
    await sleep(200);
  }
  return false;
}

/* Screenshots a page that is not the site's (the stand-in's checkout
 * page): no checks, it stands in for Stripe's. */
async function shoot(page, label) {
  await page.waitForLoadState('load');
  shotNo++;
  await page.screenshot({ path: path.join(cfg.shots, `${String(shotNo).padStart(2, '0')}-${label}.png`),
    fullPage: true });
}

const CARD_QUESTION = 'We bake cakes to order. How should we price a three-tier wedding cake?';
const CARD_ANSWER = 'Price the **hours** first, then the ingredients, then add a margin of a third.';

/* The second order: asked, paid by card on the stand-in's checkout page,
 * answered, refunded to the card with no human step. amount: the
 * price, as the consultant's order page wrote it for the first order. */
async function cardOrder(browser, client, staff, base, amount) {
  await client.goto(base + '/ask');
  await client.locator('#name').fill('Ada Baker');
  await client.locator('#email').fill(cfg.clientEmail);
  await client.locator('#topic').selectOption('Pricing');
  await client.locator('#question').fill(CARD_QUESTION);
  await client.locator('#agree').check();
  await go(client, () => client.getByRole('button', { name: 'Send my question' }).click(), /\/o\/[A-Za-z0-9_-]+$/);
  const statusPath = new URL(client.url()).pathname;
  const number = (/Order (\S+)/.exec(await client.locator('.eyebrow').first().textContent()) || [])[1];
  must(!!number, `card: a second order, ${number}`);
  await visit(client, 'card-status-unpaid');
  const pay = client.getByRole('button', { name: new RegExp(`^Pay ${esc(amount)} \\w{3} by card$`) });
  must(await pay.count() === 1, `card: the status page offers "Pay ${amount} ... by card"`,
    await client.locator('#payment').innerText());
  ok(/Or pay by bank transfer/.test(await client.locator('#payment').innerText()),
    'card: with bank transfer below it');

  // The stand-in's checkout page, then back.
  await go(client, () => pay.click(), /^\/pay\/cs_[A-Za-z0-9_]+$/);
  must(client.url().startsWith(cfg.stripe + '/pay/cs_'), 'card: the button leads to Stripe\'s checkout page',
    client.url());
  await shoot(client, 'card-checkout');
  ok((await client.locator('#amount').innerText()).startsWith(amount),
    `card: the checkout page asks for ${amount}`, await client.locator('#amount').innerText());
  ok((await client.locator('#product').innerText()).includes(number), 'card: and names the order');
  await go(client, () => client.getByRole('button', { name: 'Pay' }).click(), statusPath);
  await visit(client, 'card-paid');
  const back = new URL(client.url());
  ok(back.searchParams.get('checkout') === 'done' && /^cs_/.test(back.searchParams.get('session_id') || ''),
    'card: Stripe sends the client back to the status page with the session', client.url());
  must(/Payment received \u2014 thank you/.test(await client.locator('.notice').innerText().catch(() => '')),
    'card: back on the status page, "Payment received \u2014 thank you"', await client.locator('main').innerText());
  must(/Paid/.test(await statusText(client)), 'card: the order is paid', await statusText(client));
  ok(await client.locator('#pay-card').count() === 0, 'card: the Pay button is gone');
  const paidMail = await waitMail((m) => m.to.includes(cfg.clientEmail) && /Payment received/.test(m.subject) &&
    m.subject.includes(number), 'the card payment\'s receipt');
  ok(paidMail.text.includes(amount), `card: the client is emailed that ${amount} arrived`, paidMail.text);

  // The consultant sees a card payment with its Stripe reference, and answers.
  await staff.goto(base + '/admin');
  const row = staff.locator('table.queue tr', { hasText: number });
  must(await row.count() === 1, `card: the paid order ${number} is in the consultant's queue`);
  await go(staff, () => row.getByRole('link', { name: number }).click(), /\/admin\/orders\/\d+$/);
  const orderPath = new URL(staff.url()).pathname;
  await visit(staff, 'card-admin-order');
  await staff.locator('#money-ledger > summary').click();
  const ledger = await staff.locator('main').innerText();
  ok(/\bcard\b/i.test(ledger) && /pi_[A-Za-z0-9]+/.test(ledger), 'card: the order page shows the card payment and its PaymentIntent',
    ledger);
  ok(await staff.locator('a[href^="https://dashboard.stripe.com/test/payments/pi_"]').count() > 0,
    'card: with a link into Stripe\'s dashboard (test mode)');
  await staff.locator('#body').fill(CARD_ANSWER);
  await sendReply(staff, orderPath, 'card-admin-reply-confirm');
  must(/Answered/.test(await statusText(staff)), 'card: the consultant answers', await statusText(staff));

  // The refund: asked for from the answer email, back to the card. The
  // stand-in keeps it pending until told, as a bank may: the order is
  // refunded only when Stripe's refund.updated webhook says it succeeded.
  await standin('refund_status', { status: 'pending' });
  const ansMail = await waitMail((m) => m.to.includes(cfg.clientEmail) && /Your answer is ready/.test(m.subject) &&
    m.subject.includes(number), 'the card order\'s answer');
  const refundLink = linkIn(ansMail.text, '/r/');
  must(!!refundLink, 'card: the answer email carries the refund link', ansMail.text);
  // Not happy: the "no" page of the rating, with its feedback.
  await client.goto(base + statusPath + '?rating=no');
  await visit(client, 'rating-no');
  const noLink = await client.locator('#refund-link').getAttribute('href').catch(() => null);
  ok(/Sorry to hear that/.test(await client.locator('h1').innerText()) && linkToken(noLink) !== '' &&
    linkToken(noLink) === linkToken(refundLink),
  'card: the "no" page gives the refund link itself', noLink);
  ok(await client.locator('#feedback-form').getByLabel(/What was missing from the answer/).count() === 1 &&
    /does not ask for your money back/.test(await client.locator('#feedback-hint').innerText()),
  'card: and a form to say what was missing without asking for money back');
  await client.locator('#feedback').fill(FEEDBACK);
  await rateAnswer(client, 'no');
  await client.goto(base + refundLink);
  await visit(client, 'card-refund');
  await client.getByLabel(/What could have been better/).fill(REASON);
  await go(client, () => client.getByRole('button', { name: 'Refund my payment' }).click(), refundLink);
  await visit(client, 'card-refund-requested');
  must(/Refund requested|Refunded/.test(await client.locator('#request').innerText()),
    'card: the client has asked for the refund', await client.locator('main').innerText());
  const re = await waitStripeRefund();
  const session = (await standin('state')).sessions[0];
  must(re !== null && re.amount === session.amount_total && re.payment_intent === session.payment_intent &&
    re.status === 'pending',
  'card: with no human step, `pmbctl pay run` asks Stripe to refund the whole payment to the card',
  JSON.stringify(re));
  await standin('flush', { timeout: 5 });       // the webhooks of its creation, answered
  await client.goto(base + statusPath);
  await visit(client, 'card-refund-pending');
  ok(!/Refunded/.test(await statusText(client)) &&
    /on its way/.test(await client.locator('.guarantee-note').innerText()),
  'card: while Stripe has not confirmed, the status page says the refund is on its way, not refunded',
  await statusText(client));
  await standin('settle_refund', { refund: re.id });
  must(await waitRefunded(client, statusPath),
    'card: Stripe confirms by webhook (refund.updated): the status page says "Refunded"',
    await statusText(client));
  await visit(client, 'card-refunded');
  const guarantee = await client.locator('.guarantee-note').innerText();
  ok(/has been refunded/.test(guarantee), 'card: the guarantee section says the payment was refunded', guarantee);
  const receipt = await waitMail((m) => m.to.includes(cfg.clientEmail) && /has been refunded/.test(m.subject) &&
    m.subject.includes(number), 'the card refund\'s receipt');
  ok(receipt.text.includes(amount) && /card/.test(receipt.text),
    `card: the receipt email says ${amount} went back to the card: "${receipt.subject}"`, receipt.text);
  await staff.goto(base + orderPath);
  await visit(staff, 'card-admin-refunded');
  ok((await staff.locator('#feedback').innerText().catch(() => '')).includes(FEEDBACK),
    'card: the order page shows what the client said was missing, from the rating page');
  ok(/re_[A-Za-z0-9]+/.test(await staff.locator('main').innerText()),
    'card: the consultant\'s order page shows the refund with Stripe\'s reference (re_...)');
}

main().then(() => process.exit(0), (e) => {
  console.log('not ok - the journey script crashed');
  console.log('# ' + String(e.stack || e).split('\n').join('\n# '));
  process.exit(2);
});
