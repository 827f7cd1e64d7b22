// Screenshots of each email's HTML part (tests/mailhtml.py), in Debian's
// chromium driven by playwright-core, at each width asked for, as a mail
// program shows it: the HTML set as the page's content, offline. Each
// is checked: no horizontal scrolling, no request at all (nothing
// external), every button (a link drawn as a block with a background)
// at least 44 px tall and inside the page's width, and the contrast of
// every text against its background at least 4.5:1 (WCAG AA), buttons
// named. argv[2] is JSON: deps (the folder whose node_modules holds
// playwright-core), chromium, dir (KIND.html files, the shots go beside
// them as KIND-WIDTH.png), kinds and widths. Prints TAP points without
// numbers ("ok - NAME", "not ok - NAME") and "#" comments.
import path from 'node:path';
import { createRequire } from 'node:module';
import { ok } from './tap.mjs';
import fs from 'node:fs';

const cfg = JSON.parse(process.argv[2]);
const require = createRequire(path.join(cfg.deps, 'package.json'));
const { chromium } = require('playwright-core');

const MIN_BUTTON_HEIGHT = 44;   // px: a finger's target (WCAG 2.5.5, Apple HIG)
const MIN_CONTRAST = 4.5;       // WCAG AA for text of normal size

// Runs in the page: what the checks need, measured.
function measure() {
  const rgba = (s) => {
    const m = /rgba?\(([^)]+)\)/.exec(s);
    if (!m) return [0, 0, 0, 0];
    const v = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1];
  };
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((x) => {
      x /= 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  // The colour behind el: the first opaque background up the tree.
  const behind = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0.5) return c;
    }
    return [255, 255, 255, 1];
  };
  const contrast = (el) => {
    const a = lum(rgba(getComputedStyle(el).color)), b = lum(behind(el));
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  };
  const doc = document.documentElement;
  const buttons = [...document.querySelectorAll('a')].filter((a) => {
    const s = getComputedStyle(a);
    return s.display === 'inline-block' && rgba(s.backgroundColor)[3] > 0;
  }).map((a) => {
    const r = a.getBoundingClientRect(), s = getComputedStyle(a);
    return { text: a.textContent.trim(), height: r.height, left: r.left, right: r.right,
      visible: r.width > 0 && r.height > 0 && s.visibility === 'visible' && s.opacity !== '0',
      contrast: contrast(a) };
  });
  // Every element that holds text of its own.
  const low = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== '');
    if (own && contrast(el) < 4.5)
      low.push(`${el.tagName} "${el.textContent.trim().slice(0, 30)}": ${contrast(el).toFixed(2)}`);
  }
  return { scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth, buttons, low,
    innerWidth: window.innerWidth };
}

async function main() {
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  console.log(`# chromium ${browser.version()}`);
  try {
    for (const width of cfg.widths) {
      const ctx = await browser.newContext({ viewport: { width, height: 800 }, offline: true });
      const page = await ctx.newPage();
      const requests = [];
      page.on('request', (q) => requests.push(q.url()));
      for (const kind of cfg.kinds) {
        const html = fs.readFileSync(path.join(cfg.dir, `${kind}.html`), 'utf8');
        requests.length = 0;
        await page.setContent(html, { waitUntil: 'load' });
        await page.screenshot({ path: path.join(cfg.dir, `${kind}-${width}.png`), fullPage: true });
        const m = await page.evaluate(measure);
        const at = `${kind} at ${width}px`;
        ok(m.scrollWidth <= m.clientWidth, `${at}: no horizontal scrolling`,
          `scrollWidth ${m.scrollWidth} > clientWidth ${m.clientWidth}`);
        ok(requests.length === 0, `${at}: the email loads nothing`, requests.join('\n'));
        ok(m.buttons.length > 0 && m.buttons.every((b) => b.visible && b.height >= MIN_BUTTON_HEIGHT &&
          b.left >= 0 && b.right <= m.innerWidth),
        `${at}: ${m.buttons.length} button(s) visible, inside the width, ${MIN_BUTTON_HEIGHT} px tall or more`,
        JSON.stringify(m.buttons, null, 1));
        ok(m.buttons.every((b) => b.contrast >= MIN_CONTRAST),
          `${at}: the buttons' text has a contrast of ${MIN_CONTRAST}:1 or more (` +
          m.buttons.map((b) => `${b.text} ${b.contrast.toFixed(1)}`).join(', ') + ')',
          JSON.stringify(m.buttons, null, 1));
        ok(m.low.length === 0, `${at}: every text has a contrast of ${MIN_CONTRAST}:1 or more`,
          m.low.join('\n'));
      }
      await ctx.close();
    }
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  ok(false, 'the screenshots were taken', e.stack || String(e));
  process.exit(1);
});
