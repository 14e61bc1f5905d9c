// A patient searches for a doctor in headless Chromium: from the home page's box, then in the
// doctor list with htmx (the list swapped in place, its address pushed), Back, Forward and
// reload, the pager with and without JavaScript, and both pages at 390 px wide.
//
//   node tests/browser/search.mjs BASE_URL
//
// Run by tests/browser.rs (`cargo test browser`), which starts the server and the emulators
// with the directories synced. Needs /usr/bin/chromium (another binary via CHROMIUM_PATH)
// and playwright-core (`npm ci --prefix tests/browser`). Prints `SEARCH_OK` and exits 0 on
// success; prints the failed step and exits 1 otherwise (the page at a failure is saved to
// target/browser/search-failure.png).
//
// "The list agrees" means: the box and the selects show what the address says, and the list
// shows what the server renders for that address.

import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(REPO, 'target', 'browser');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

class StepFailed extends Error {}

function check(condition, message) {
  if (!condition) throw new StepFailed(message);
}

/** Polls `probe` until it returns a truthy value; fails with `message` after `ms`. */
async function until(probe, message, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => false);
    if (value) return value;
    if (Date.now() > deadline) throw new StepFailed(message);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function log(message) {
  console.log(`browser: ${message}`);
}

/** Reports console errors, uncaught exceptions, dialogs, 5xx answers and CSP violations. */
async function watch(context, problems) {
  await context.exposeBinding('__reportCspViolation', ({ frame }, v) => {
    problems.push(`CSP violation on ${frame.url()}: ${v.directive} blocked ${v.blocked} (${v.source})`);
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__reportCspViolation({
        directive: e.violatedDirective,
        blocked: e.blockedURI || 'inline',
        source: `${e.sourceFile || ''}:${e.lineNumber || 0}`,
      });
    });
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const source = msg.location()?.url;
    problems.push(`console error on ${page.url()}: ${msg.text()}${source ? ` (${source})` : ''}`);
  });
  page.on('pageerror', (err) => problems.push(`uncaught exception on ${page.url()}: ${err.message}`));
  page.on('dialog', (dialog) => {
    problems.push(`unexpected ${dialog.type()} dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on('response', (response) => {
    if (response.status() >= 500) problems.push(`HTTP ${response.status()} for ${response.url()}`);
  });
  return page;
}

async function main() {
  const [base] = process.argv.slice(2);
  check(base, 'usage: node search.mjs BASE_URL');
  const origin = new URL(base).origin;

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const problems = [];
  let page;
  try {
    const context = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1366, height: 900 } });
    page = await watch(context, problems);

    const pathOf = () => {
      const url = new URL(page.url());
      return decodeURIComponent(url.pathname + url.search);
    };
    const param = (name) => new URL(page.url()).searchParams.get(name) ?? '';
    const htmxLoaded = () => page.evaluate(() => typeof window.htmx === 'object' && window.htmx !== null);
    const cardNames = () => page.locator('#doctor-list .doctor-card h2 a').allTextContents();
    const pagerText = async () => {
      const pager = page.locator('#doctor-list .pager span');
      return (await pager.count()) > 0 ? (await pager.textContent()).trim() : '';
    };

    /** The box, the selects, the address and the list say the same. */
    const agrees = async (when) => {
      await until(htmxLoaded, `${when}: htmx did not load (blocked by CSP?)`);
      check((await page.inputValue('#q')) === param('q'), `${when}: the box shows "${await page.inputValue('#q')}" at ${pathOf()}`);
      for (const [name, fallback] of [['speciality_id', ''], ['branch_id', ''], ['sort', 'name']]) {
        const shown = await page.inputValue(`#${name}`);
        check(shown === (param(name) || fallback), `${when}: ${name} shows "${shown}" at ${pathOf()}`);
      }
      const rendered = await page.evaluate(async () => {
        const html = await (await fetch(location.href)).text();
        const doc = new DOMParser().parseFromString(html, 'text/html');
        const names = [...doc.querySelectorAll('#doctor-list .doctor-card h2 a')].map((a) => a.textContent);
        const pager = doc.querySelector('#doctor-list .pager span');
        return { names, pager: pager ? pager.textContent.trim() : '' };
      });
      const names = await cardNames();
      check(
        JSON.stringify(names) === JSON.stringify(rendered.names),
        `${when}: the list shows ${JSON.stringify(names)}, the address ${pathOf()} renders ${JSON.stringify(rendered.names)}`,
      );
      check((await pagerText()) === rendered.pager, `${when}: the pager says "${await pagerText()}", not "${rendered.pager}"`);
      return names;
    };

    /** Runs `action`, which must swap the list in place (the document stays) and push `wanted`. */
    const inPlace = async (action, wanted, when) => {
      await page.evaluate(() => { window.__sameDocument = true; });
      const swapped = page.waitForResponse((r) => new URL(r.url()).pathname === '/doctors' && r.request().headers()['hx-request'] === 'true');
      await action();
      const response = await swapped;
      check(response.ok(), `${when}: the list answered ${response.status()}`);
      await until(() => Promise.resolve(wanted(new URL(page.url()))), `${when}: the address did not become what was asked (${pathOf()})`);
      await page.waitForLoadState('load');
      check(await page.evaluate(() => window.__sameDocument === true), `${when}: the page was reloaded instead of swapping the list`);
    };

    /** Runs `action`, which must end in another document (a navigation or a reload). */
    const newDocument = async (action, when) => {
      await page.evaluate(() => { window.__oldDocument = true; });
      await action();
      await until(() => page.evaluate(() => window.__oldDocument !== true && document.readyState === 'complete'), `${when}: no new page was loaded`);
    };

    // 1. The home page: the search box, the specialities, the branches.
    log('home page');
    await page.goto(`${origin}/`);
    check(await page.getByRole('search').isVisible(), 'the home page has no search box');
    check((await page.locator('.speciality-links a').count()) > 0, 'the home page lists no specialities');
    check((await page.locator('.branch-card').count()) > 0, 'the home page lists no branches');
    check((await page.locator('a[href^="tel:"]').count()) > 0, 'the home page has no phone link');
    await page.getByLabel('Врач или специальность').fill('семенова');
    await newDocument(() => page.keyboard.press('Enter'), 'search from the home page');
    check(pathOf().startsWith('/doctors?q=семенова'), `the home search went to ${pathOf()}`);
    let names = await agrees('"семенова" from the home page');
    check(names.some((n) => n.startsWith('Семёнова ')), `"семенова" does not find Семёнова: ${JSON.stringify(names)}`);
    log(`"семенова" finds ${names.length}: ${names.join(', ')}`);

    // 2. "кардиолог" in the list's box: htmx swaps the list and pushes the address.
    await inPlace(() => page.fill('#q', 'кардиолог'), (url) => url.searchParams.get('q') === 'кардиолог', 'typing "кардиолог"');
    names = await agrees('"кардиолог"');
    check(names.length > 0, '"кардиолог" finds nobody');
    const specialities = await page.locator('#doctor-list .doctor-specialities').allTextContents();
    check(specialities.every((s) => s.includes('Кардиология')), `"кардиолог" finds others: ${JSON.stringify(specialities)}`);
    log(`"кардиолог" finds ${names.length} cardiologists`);

    // 3. The order: nearest free time first.
    await inPlace(() => page.selectOption('#sort', 'nearest'), (url) => url.searchParams.get('sort') === 'nearest', 'sorting by time');
    await agrees('sorted by the nearest time');

    // 4. Back, Back, reload, Forward: each time the page is what its address says.
    await newDocument(() => page.goBack(), 'Back to "кардиолог"');
    check(param('q') === 'кардиолог' && param('sort') === '', `Back went to ${pathOf()}`);
    await agrees('Back to "кардиолог"');
    await newDocument(() => page.goBack(), 'Back to "семенова"');
    check(param('q') === 'семенова', `the second Back went to ${pathOf()}`);
    names = await agrees('Back to "семенова"');
    check(names.some((n) => n.startsWith('Семёнова ')), 'after Back the list lost Семёнова');
    await newDocument(() => page.reload(), 'reload of "семенова"');
    check(param('q') === 'семенова', `the reload went to ${pathOf()}`);
    await agrees('reload of "семенова"');
    await newDocument(() => page.goForward(), 'Forward to "кардиолог"');
    check(param('q') === 'кардиолог', `Forward went to ${pathOf()}`);
    await agrees('Forward to "кардиолог"');
    log('Back, reload and Forward keep the filters');

    // 5. The pager: a real link that htmx follows in place; Back returns to page 1.
    await page.goto(`${origin}/doctors`);
    const firstPager = await pagerText();
    check(/^Страница 1 из \d+$/.test(firstPager), `the full list has no pager: "${firstPager}"`);
    const next = page.locator('#doctor-list .pager a[rel="next"]');
    check((await next.getAttribute('href')) === '/doctors?page=2', 'the "Дальше" link is not /doctors?page=2');
    await inPlace(() => next.click(), (url) => url.searchParams.get('page') === '2', '"Дальше"');
    check((await pagerText()).startsWith('Страница 2 из'), `"Дальше" shows "${await pagerText()}"`);
    await agrees('page 2');
    await newDocument(() => page.goBack(), 'Back to page 1');
    check(pathOf() === '/doctors', `Back from page 2 went to ${pathOf()}`);
    check((await pagerText()) === firstPager, `Back from page 2 shows "${await pagerText()}"`);
    await agrees('Back to page 1');
    log('the pager swaps in place and Back returns');

    // 6. Without JavaScript: the pager and the form are plain links and a GET form.
    const noJs = await browser.newContext({ locale: 'ru-RU', javaScriptEnabled: false, viewport: { width: 1366, height: 900 } });
    const plain = await noJs.newPage();
    await plain.goto(`${origin}/doctors`);
    await plain.locator('#doctor-list .pager a[rel="next"]').click();
    await plain.waitForURL((url) => url.searchParams.get('page') === '2');
    check((await plain.locator('#doctor-list .pager span').textContent()).startsWith('Страница 2 из'), 'without JavaScript "Дальше" does not show page 2');
    await plain.fill('#q', 'кардиолог');
    await plain.getByRole('button', { name: 'Найти' }).click();
    await plain.waitForURL((url) => url.searchParams.get('q') === 'кардиолог');
    const plainSpecialities = await plain.locator('#doctor-list .doctor-specialities').allTextContents();
    check(plainSpecialities.length > 0 && plainSpecialities.every((s) => s.includes('Кардиология')), 'without JavaScript the form does not search');
    check((await plain.inputValue('#q')) === 'кардиолог', 'without JavaScript the box lost the search');
    await noJs.close();
    log('without JavaScript the pager and the form work');

    // 7. A phone's width: nothing wider than the screen.
    const narrow = await browser.newContext({ locale: 'ru-RU', viewport: { width: 390, height: 844 }, isMobile: true });
    const phone = await watch(narrow, problems);
    for (const at of ['/', '/doctors', '/doctors?q=%D0%BA%D0%B0%D1%80%D0%B4%D0%B8%D0%BE%D0%BB%D0%BE%D0%B3&sort=nearest']) {
      await phone.goto(`${origin}${at}`);
      const { scroll, inner } = await phone.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
      check(scroll <= inner, `${at} at 390 px is ${scroll} px wide`);
    }
    await narrow.close();
    log('390 px: no horizontal scroll');

    check(problems.length === 0, `the pages reported problems:\n  ${problems.join('\n  ')}`);
    console.log('SEARCH_OK');
  } catch (err) {
    let message = err instanceof StepFailed ? err.message : err.stack || String(err);
    if (page) {
      await mkdir(SHOTS, { recursive: true }).catch(() => {});
      await page.screenshot({ path: path.join(SHOTS, 'search-failure.png'), fullPage: true }).catch(() => {});
      message += `\n  (at ${page.url()}; screenshot target/browser/search-failure.png)`;
    }
    if (problems.length > 0 && !message.includes('reported problems')) {
      message += `\n  the pages also reported:\n  ${problems.join('\n  ')}`;
    }
    throw new StepFailed(message);
  } finally {
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    const message = err instanceof StepFailed ? err.message : err.stack || String(err);
    console.error(`browser test failed: ${message}`);
    process.exit(1);
  },
);
