// The site map in headless Chromium: every page a visitor, a patient, a member of staff and
// an admin reach, at 390×844 (a phone) and 1366×900 (a laptop), each with JavaScript on and
// off, against the real server and its production CSP. On every page:
//   (a) nothing is wider than the window (`scrollWidth <= innerWidth`); a failure names the
//       element that sticks out furthest;
//   (b) no console error, uncaught exception or CSP violation;
//   (c) on the pages patients meet first, axe-core finds no WCAG 2.2 AA violation (JavaScript
//       on; the markup is the same without it);
//   (d) no Latin word on screen, but e-mail addresses, addresses of pages, request ids and the
//       few names in ALLOWED_LATIN.
//
//   node tests/browser/site_map.mjs BASE_URL FACTS_JSON
//
// FACTS_JSON, made by tests/browser.rs (`cargo test browser`), which starts the server and
// the emulators and creates the accounts and the record:
//   {"patient": {"email", "password"}, "staff": {…}, "admin": {…},
//    "doctorId", "branchId", "recordId", "freeStart", "dayDate", "search"}
// Pages are opened by their addresses, never by clicking, so the map survives changes of
// layout. Every failure of every page is collected; the script prints a line per page,
// viewport and JavaScript setting with its time, then the failures, and exits 1 if there
// are any (a screenshot of each failing page goes to target/browser/site-map-*.png).

import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(REPO, 'target', 'browser');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const AXE = path.join(REPO, 'tests', 'browser', 'node_modules', 'axe-core', 'axe.min.js');
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];
const VIEWPORTS = [
  { width: 390, height: 844 },
  { width: 1366, height: 900 },
];

/**
 * Latin words that may be on screen, each for a reason:
 * - SMS: the word on the pages about codes and messages, as Russian sites write it;
 * - Chrome, Linux: the browser and system of the session list (`/account/sessions`) as
 *   headless Chromium reports them; brand names have no Russian form;
 * - Excel, CSV: the formats of the staff's export buttons (`/staff/records`).
 */
const ALLOWED_LATIN = new Set(['SMS', 'Chrome', 'Linux', 'Excel', 'CSV']);

class StepFailed extends Error {}

function check(condition, message) {
  if (!condition) throw new StepFailed(message);
}

/** The pages of the map: who opens them, where, and whether axe checks them. */
function siteMap(f) {
  const book = new URLSearchParams({ branch_id: String(f.branchId), start: f.freeStart });
  const day = new URLSearchParams({
    specialist_id: String(f.doctorId),
    branch_id: String(f.branchId),
    date: f.dayDate,
  });
  return [
    { role: 'visitor', name: 'главная', path: '/', axe: true },
    { role: 'visitor', name: 'врачи', path: '/doctors', axe: true },
    { role: 'visitor', name: 'поиск врачей', path: `/doctors?${new URLSearchParams({ q: f.search })}` },
    { role: 'visitor', name: 'врачи по времени, стр. 2', path: '/doctors?sort=nearest&page=2' },
    { role: 'visitor', name: 'врач', path: `/doctors/${f.doctorId}?branch_id=${f.branchId}`, axe: true },
    { role: 'visitor', name: 'вход', path: '/login', axe: true },
    { role: 'visitor', name: 'регистрация', path: '/register', axe: true },
    { role: 'visitor', name: 'забыли пароль', path: '/password/forgot' },
    { role: 'visitor', name: 'запись без входа', path: `/doctors/${f.doctorId}/book?${book}` },
    { role: 'patient', name: 'кабинет', path: '/cabinet', axe: true },
    { role: 'patient', name: 'мои записи', path: '/cabinet/records' },
    { role: 'patient', name: 'запись', path: `/cabinet/records/${f.recordId}`, axe: true },
    { role: 'patient', name: 'отмена записи', path: `/cabinet/records/${f.recordId}/cancel` },
    { role: 'patient', name: 'календарь', path: '/cabinet/calendar' },
    { role: 'patient', name: 'удаление кабинета', path: '/cabinet/delete' },
    { role: 'patient', name: 'профиль', path: '/cabinet/profile' },
    { role: 'patient', name: 'кто видел мои данные', path: '/cabinet/access-log' },
    { role: 'patient', name: 'мои данные', path: '/cabinet/my-data' },
    { role: 'patient', name: 'сеансы', path: '/account/sessions' },
    { role: 'patient', name: 'согласие', path: '/cabinet/consent' },
    { role: 'staff', name: 'рабочее место', path: '/staff' },
    { role: 'staff', name: 'записи пациентов', path: '/staff/records' },
    { role: 'staff', name: 'поиск пациента', path: '/staff/callers' },
    { role: 'staff', name: 'день врача', path: `/staff/day?${day}` },
    { role: 'staff', name: 'запись (сотрудник)', path: `/staff/records/${f.recordId}` },
    { role: 'staff', name: 'синхронизация', path: '/staff/sync' },
    { role: 'admin', name: 'администрирование', path: '/admin' },
    { role: 'admin', name: 'пользователи', path: '/admin/users' },
    { role: 'admin', name: 'журнал действий', path: '/admin/audit' },
  ];
}

/** Logs `who` in through the login form; the cookies, for the contexts of the matrix. */
async function logIn(browser, origin, role, who) {
  const context = await browser.newContext({ locale: 'ru-RU' });
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(`${origin}/login`);
    await page.locator('form[action="/login"] input[name="email"]').fill(who.email);
    await page.locator('form[action="/login"] input[name="password"]').fill(who.password);
    await Promise.all([
      page.waitForURL((url) => url.pathname !== '/login').catch(() => {}),
      page.locator('form[action="/login"] button[type="submit"]').click(),
    ]);
    if (new URL(page.url()).pathname === '/login') {
      const alert = (await page.locator('[role="alert"]').allTextContents()).join(' ');
      throw new StepFailed(`${role} ${who.email} could not log in: ${alert || 'still on /login'}`);
    }
    return await context.storageState();
  } finally {
    await context.close();
  }
}

/** The page's widest overflow at this window width, or null: the element that sticks out
 *  furthest (the deepest one of those that end at the same edge). */
function overflowOf() {
  const width = window.innerWidth;
  const scrollWidth = document.documentElement.scrollWidth;
  if (scrollWidth <= width) return null;
  let worst = null;
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.right <= width + 0.5) continue;
    if (!worst || box.right > worst.right + 0.5 || (Math.abs(box.right - worst.right) <= 0.5 && worst.el.contains(el))) {
      worst = { el, right: box.right };
    }
  }
  const describe = (el) => {
    if (!el) return 'nothing measurable (a pseudo-element or the body margin?)';
    const parts = [];
    for (let node = el; node && node !== document.body && parts.length < 4; node = node.parentElement) {
      let part = node.tagName.toLowerCase();
      if (node.id) part += `#${node.id}`;
      if (node.classList.length > 0) part += `.${[...node.classList].join('.')}`;
      parts.unshift(part);
    }
    const text = (el.innerText || el.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 60);
    return `${parts.join(' > ')}${text ? ` «${text}»` : ''}`;
  };
  return {
    scrollWidth,
    width,
    element: describe(worst?.el),
    right: worst ? Math.round(worst.right) : scrollWidth,
  };
}

/** Latin words on screen, less e-mail addresses, URLs, addresses of pages, request ids
 *  (UUIDs), IPv6 addresses and ALLOWED_LATIN. */
function latinWords(text) {
  const cleaned = text
    .replace(/[\w.+-]+@[\w-]+(\.[\w-]+)+/g, ' ')
    .replace(/\bhttps?:\/\/\S+/g, ' ')
    .replace(/(^|\s)\/\S*/g, ' ')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, ' ')
    .replace(/(?:[0-9a-f]{0,4}:){2,}[0-9a-f]{0,4}/gi, ' ');
  const words = cleaned.match(/[A-Za-z]{2,}/g) ?? [];
  return [...new Set(words.filter((w) => !ALLOWED_LATIN.has(w)))];
}

/** One page in one context: its failures (empty when it passes). */
async function visitPage(page, origin, entry, { width, javaScript, axeSource, events }) {
  const failures = [];
  events.length = 0;
  const response = await page.goto(`${origin}${entry.path}`, { waitUntil: 'load' });
  const landed = new URL(page.url());
  const wanted = new URL(`${origin}${entry.path}`);
  if (!response || response.status() !== 200) {
    failures.push(`answered ${response ? response.status() : 'nothing'}`);
  }
  if (landed.pathname !== wanted.pathname) {
    failures.push(`landed on ${landed.pathname}${landed.search} instead`);
  }
  if (javaScript) {
    // A frame for htmx to start and for late console or CSP reports to arrive.
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 50))));
  }

  const overflow = await page.evaluate(overflowOf);
  if (overflow) {
    failures.push(
      `${overflow.scrollWidth} px wide in a ${overflow.width} px window; furthest out (to ${overflow.right} px): ${overflow.element}`,
    );
  }
  failures.push(...events);

  const latin = latinWords(await page.evaluate(() => document.body.innerText));
  if (latin.length > 0) failures.push(`Latin words on screen: ${latin.join(', ')}`);

  if (entry.axe && javaScript) {
    // Through the DevTools protocol, which the page's CSP does not govern; the CSP reports
    // were read above, before axe ran.
    if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
    const violations = await page.evaluate(
      (tags) =>
        window.axe
          .run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })
          .then((r) => r.violations.map((v) => ({ id: v.id, help: v.help, targets: v.nodes.map((n) => n.target.join(' ')) }))),
      AXE_TAGS,
    );
    for (const v of violations) {
      failures.push(`axe ${v.id}: ${v.help} — ${v.targets.slice(0, 5).join(', ')}${v.targets.length > 5 ? ` and ${v.targets.length - 5} more` : ''}`);
    }
  }
  if (failures.length > 0) {
    await mkdir(SHOTS, { recursive: true });
    const shot = `site-map-${entry.role}-${entry.path.replace(/[^a-z0-9]+/gi, '_')}-${width}-${javaScript ? 'js' : 'nojs'}.png`;
    await page.screenshot({ path: path.join(SHOTS, shot), fullPage: true }).catch(() => {});
  }
  return failures;
}

async function main() {
  const started = Date.now();
  const [base, factsJson] = process.argv.slice(2);
  check(base && factsJson, 'usage: node site_map.mjs BASE_URL FACTS_JSON');
  const facts = JSON.parse(factsJson);
  for (const key of ['doctorId', 'branchId', 'recordId', 'freeStart', 'dayDate', 'search']) {
    check(facts[key] !== undefined && facts[key] !== '', `FACTS_JSON has no ${key}`);
  }
  for (const role of ['patient', 'staff', 'admin']) {
    check(facts[role]?.email && facts[role]?.password, `FACTS_JSON has no ${role} account`);
  }
  const origin = new URL(base).origin;
  const axeSource = await readFile(AXE, 'utf8').catch(() => {
    throw new StepFailed(`no axe-core at ${AXE}: run \`npm ci --prefix tests/browser\``);
  });
  const pages = siteMap(facts);

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
  const results = [];
  try {
    const states = { visitor: undefined };
    for (const role of ['patient', 'staff', 'admin']) {
      states[role] = await logIn(browser, origin, role, facts[role]);
    }
    for (const viewport of VIEWPORTS) {
      for (const javaScript of [true, false]) {
        for (const role of ['visitor', 'patient', 'staff', 'admin']) {
          const context = await browser.newContext({
            locale: 'ru-RU',
            viewport,
            javaScriptEnabled: javaScript,
            storageState: states[role],
          });
          /** Console errors, uncaught exceptions and CSP violations of the page being checked. */
          const events = [];
          try {
            // CSP violations as the page sees them (with JavaScript on; without it, Chromium
            // still logs each one as a console error, caught below).
            await context.exposeBinding('__reportCspViolation', (_source, v) => {
              events.push(`CSP violation: ${v.directive} blocked ${v.blocked} (${v.source})`);
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
              if (msg.type() === 'error') events.push(`console error: ${msg.text()}`);
            });
            page.on('pageerror', (err) => events.push(`uncaught exception: ${err.message}`));
            page.on('dialog', (dialog) => {
              events.push(`unexpected ${dialog.type()} dialog: ${dialog.message()}`);
              dialog.dismiss().catch(() => {});
            });
            for (const entry of pages.filter((p) => p.role === role)) {
              const pageStarted = Date.now();
              let failures;
              try {
                failures = await visitPage(page, origin, entry, { width: viewport.width, javaScript, axeSource, events });
              } catch (err) {
                failures = [`the check broke: ${err.message}`];
              }
              const result = {
                entry,
                viewport,
                javaScript,
                ms: Date.now() - pageStarted,
                failures,
              };
              results.push(result);
              console.log(
                `site map: ${viewport.width}×${viewport.height} JS ${javaScript ? 'on ' : 'off'} ${entry.role.padEnd(7)} ${entry.name.padEnd(22)} ${String(result.ms).padStart(5)} ms ${failures.length === 0 ? 'ok' : `FAILED (${failures.length})`}${entry.axe && javaScript ? ' +axe' : ''}  ${entry.path}`,
              );
            }
          } finally {
            await context.close();
          }
        }
      }
    }
  } finally {
    await browser.close();
  }
  const failed = results.filter((r) => r.failures.length > 0);
  const axed = results.filter((r) => r.entry.axe && r.javaScript).length;
  console.log(
    `site map: ${pages.length} pages × ${VIEWPORTS.length} viewports × JavaScript on/off = ${results.length} page loads, ${axed} axe runs, in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  if (failed.length > 0) {
    const lines = failed.map(
      (r) =>
        `${r.entry.name} (${r.entry.path}) at ${r.viewport.width}×${r.viewport.height}, JavaScript ${r.javaScript ? 'on' : 'off'}:\n    ${r.failures.join('\n    ')}`,
    );
    throw new StepFailed(`${failed.length} of ${results.length} page loads failed:\n  ${lines.join('\n  ')}`);
  }
  console.log('SITE_MAP_OK');
}

main().then(
  () => process.exit(0),
  (err) => {
    const message = err instanceof StepFailed ? err.message : err.stack || String(err);
    console.error(`site map failed: ${message}`);
    process.exit(1);
  },
);
