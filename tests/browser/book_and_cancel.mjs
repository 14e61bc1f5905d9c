// A patient books a visit and cancels it, in headless Chromium, with JavaScript (htmx) on.
//
//   node tests/browser/book_and_cancel.mjs BASE_URL EMAIL PASSWORD DOCTOR_ID BRANCH_ID
//
// Run by tests/browser.rs (`cargo test browser`), which starts the server and the emulators.
// Needs /usr/bin/chromium (`apt-get install chromium`; another binary via CHROMIUM_PATH) and
// playwright-core (`npm ci --prefix tests/browser`). Prints `RECORD_ID=<id>` and exits 0 on
// success; prints the failed step and exits 1 otherwise. The page after booking is saved to
// target/browser/booked.png, the page at a failure to target/browser/failure.png.

import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(REPO, 'target', 'browser');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SESSION_COOKIES = ['sovamed_session', '__Host-sovamed_session'];
/** How many "next day" clicks to look for a free slot. */
const MAX_DAYS = 14;

class StepFailed extends Error {}

function check(condition, message) {
  if (!condition) throw new StepFailed(message);
}

/** Polls `probe` until it returns a truthy value; fails with `message` after `ms`. */
async function until(probe, message, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new StepFailed(message);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function log(message) {
  console.log(`browser: ${message}`);
}

async function main() {
  const [base, email, password, doctorId, branchId] = process.argv.slice(2);
  if (!base || !email || !password || !/^\d+$/.test(doctorId ?? '') || !/^\d+$/.test(branchId ?? '')) {
    throw new StepFailed('usage: node book_and_cancel.mjs BASE_URL EMAIL PASSWORD DOCTOR_ID BRANCH_ID');
  }
  const origin = new URL(base).origin;
  const doctorPath = `/doctors/${doctorId}?branch_id=${branchId}`;

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Playwright adds its own --headless and a fresh --user-data-dir; these are on top.
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
  /** Console errors, uncaught exceptions and CSP violations of every page. */
  const problems = [];
  let page;
  try {
    const context = await browser.newContext({ locale: 'ru-RU', viewport: { width: 1280, height: 900 } });
    // CSP violations, as the page sees them; the init script runs outside the page's CSP.
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
    page = await context.newPage();
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

    const pathOf = () => {
      const url = new URL(page.url());
      return url.pathname + url.search;
    };
    const htmxLoaded = () => page.evaluate(() => typeof window.htmx === 'object' && window.htmx !== null);
    const assertSessionCookieHidden = async (when) => {
      const cookies = await context.cookies(origin);
      const session = cookies.find((c) => SESSION_COOKIES.includes(c.name));
      check(session, `${when}: the browser has no session cookie (${cookies.map((c) => c.name).join(', ') || 'none'})`);
      check(session.httpOnly, `${when}: the session cookie ${session.name} is not HttpOnly`);
      const visible = await page.evaluate(() => document.cookie);
      check(
        !visible.split(';').some((c) => SESSION_COOKIES.includes(c.trim().split('=')[0])),
        `${when}: document.cookie shows the session cookie: ${visible}`,
      );
    };

    // 1. The login page, with the doctor's page as the next stop.
    log('log in');
    await page.goto(`${origin}/login?next=${encodeURIComponent(doctorPath)}`);
    check(
      (await page.locator('h1').textContent())?.includes('Вход'),
      `the login page is not shown at ${page.url()}`,
    );
    check(
      (await page.locator('input[name="next"]').inputValue()) === doctorPath,
      'the login form does not carry the next page',
    );
    await page.getByLabel('Электронная почта').click();
    await page.keyboard.type(email);
    await page.getByLabel('Пароль').click();
    await page.keyboard.type(password);
    await page.getByRole('button', { name: 'Войти', exact: true }).click();
    await page
      .waitForURL((url) => url.pathname === `/doctors/${doctorId}`)
      .catch(async () => {
        const alert = await page.locator('[role="alert"]').allTextContents();
        throw new StepFailed(`after "Войти" the browser is at ${pathOf()}, not the doctor's page ${alert.join(' ')}`);
      });
    check(await page.getByRole('link', { name: 'Личный кабинет' }).isVisible(), 'after login the menu has no "Личный кабинет"');
    await assertSessionCookieHidden('after login');

    // 2. The doctor's page: move day by day (htmx swaps #slots in place) to a free slot; at
    //    least one day forward, so that the htmx swap is always exercised.
    log(`doctor's page ${pathOf()}`);
    check(
      await page.getByRole('heading', { name: 'Записаться на приём' }).isVisible(),
      'the doctor page has no "Записаться на приём" section',
    );
    check(await page.locator('#slots').isVisible(), 'the doctor page has no slot picker #slots');
    await until(htmxLoaded, 'htmx did not load on the doctor page (blocked by CSP or missing /static/htmx.min.js?)');
    const doctorUrl = page.url();
    const dayTitle = () => page.locator('#slots .day-nav strong').textContent();
    const freeSlots = page.locator('#slots a.slot.free');
    let days = 0;
    while (days === 0 || (await freeSlots.count()) === 0) {
      check(days < MAX_DAYS, `no free slot in ${MAX_DAYS} days from the doctor's page`);
      const before = await dayTitle();
      const slotsResponse = page.waitForResponse((r) => new URL(r.url()).pathname === `/doctors/${doctorId}/slots`);
      await page.locator('#slots .day-nav a').last().click();
      const response = await slotsResponse;
      check(response.ok(), `the next-day request answered ${response.status()}`);
      await until(async () => (await dayTitle()) !== before, `the day "${before}" did not change after "next day"`);
      check(page.url() === doctorUrl, `"next day" navigated to ${page.url()} instead of swapping the slots in place`);
      days += 1;
    }
    const slot = freeSlots.first();
    const time = (await slot.textContent()).trim();
    const day = (await dayTitle()).trim();
    log(`free slot ${day} ${time} after ${days} day(s) forward`);

    // 3. The confirmation page.
    await slot.click();
    await page.waitForURL((url) => url.pathname === `/doctors/${doctorId}/book`);
    check(
      await page.getByRole('heading', { name: 'Подтвердите запись' }).isVisible(),
      `the confirmation page is not shown at ${pathOf()}`,
    );
    const when = await page.locator('dl.profile').textContent();
    check(when.includes(time), `the confirmation page does not show the time ${time}: ${when}`);
    await page.getByLabel('Комментарий для врача').click();
    await page.keyboard.type('Запись из браузерного теста');
    await page.getByRole('button', { name: 'Записаться', exact: true }).click();
    await page
      .waitForURL((url) => /^\/cabinet\/records\/\d+$/.test(url.pathname) && url.searchParams.get('booked') === '1')
      .catch(async () => {
        const alert = await page.locator('[role="alert"]').allTextContents();
        throw new StepFailed(`after "Записаться" the browser is at ${pathOf()}, not the booked record ${alert.join(' ')}`);
      });
    const recordId = new URL(page.url()).pathname.split('/').pop();
    check(
      (await page.locator('[role="status"]').textContent())?.includes('Вы записаны'),
      'the booked page does not say "Вы записаны"',
    );
    check((await page.locator('dl.profile').textContent()).includes('запланирован'), 'the new record is not "запланирован"');
    await mkdir(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'booked.png'), fullPage: true });
    log(`booked record ${recordId}`);
    await assertSessionCookieHidden('after booking');

    // 4. The cabinet lists the visit.
    await page.getByRole('link', { name: 'Личный кабинет' }).click();
    await page.waitForURL((url) => url.pathname === '/cabinet');
    const visit = page.locator(`ul.visits a[href="/cabinet/records/${recordId}"]`);
    check((await visit.count()) === 1, `the cabinet does not list record ${recordId} under upcoming visits`);
    check((await visit.textContent()).includes(time), `the cabinet lists record ${recordId} without the time ${time}`);
    log('the cabinet lists the visit');

    // 5. The record page: cancel.
    await visit.click();
    await page.waitForURL((url) => url.pathname === `/cabinet/records/${recordId}`);
    await page.getByRole('button', { name: 'Отменить запись' }).click();
    await page.waitForURL(
      (url) => url.pathname === `/cabinet/records/${recordId}` && url.searchParams.get('cancelled') === '1',
    );
    check(
      (await page.locator('dl.profile').textContent()).includes('отменён'),
      'after "Отменить запись" the record status is not "отменён"',
    );
    check(
      (await page.getByRole('button', { name: 'Отменить запись' }).count()) === 0,
      'a cancelled record still offers "Отменить запись"',
    );
    log('cancelled');

    // The cabinet no longer lists it as upcoming.
    await page.getByRole('link', { name: 'Личный кабинет' }).click();
    await page.waitForURL((url) => url.pathname === '/cabinet');
    check(
      (await page.locator(`ul.visits a[href="/cabinet/records/${recordId}"]`).count()) === 0,
      'the cancelled visit is still listed as upcoming in the cabinet',
    );

    check(problems.length === 0, `the pages reported problems:\n  ${problems.join('\n  ')}`);
    console.log(`RECORD_ID=${recordId}`);
  } catch (err) {
    let message = err instanceof StepFailed ? err.message : err.stack || String(err);
    if (page) {
      await mkdir(SHOTS, { recursive: true }).catch(() => {});
      await page.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true }).catch(() => {});
      message += `\n  (at ${page.url()}; screenshot target/browser/failure.png)`;
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
