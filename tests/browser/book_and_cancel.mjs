// A patient's whole booking in headless Chromium, at 1366×900 and at 390×844, each with
// JavaScript (htmx) on and off: the doctor page's week picker (a week forward and back;
// reload and Back keep the chosen week) → «Ближайшее свободное время» → the confirmation
// page → book → the record page → move through its week picker → cancel after the question
// with a reason → «Записаться снова».
//
//   node tests/browser/book_and_cancel.mjs BASE_URL EMAIL PASSWORD DOCTOR_ID BRANCH_ID
//
// Run by tests/browser.rs (`cargo test browser`), which starts the server and the emulators.
// Needs /usr/bin/chromium (`apt-get install chromium`; another binary via CHROMIUM_PATH) and
// playwright-core (`npm ci --prefix tests/browser`). Prints `RECORD_ID=<id>` for each run
// and `RUNS=<n>`, and exits 0 on success; prints the failed step and exits 1 otherwise. The
// page after booking is saved to target/browser/booked-<run>.png, the page at a failure to
// target/browser/failure.png.

import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(REPO, 'target', 'browser');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SESSION_COOKIES = ['sovamed_session', '__Host-sovamed_session'];
/** How many weeks forward the record page's picker is paged to find a free time. */
const MAX_WEEKS = 4;
const COMMENT = 'Запись из браузерного теста';
const REASON = 'Не смогу прийти';
const VIEWPORTS = [
  { width: 1366, height: 900 },
  { width: 390, height: 844 },
];

class StepFailed extends Error {}

function check(condition, message) {
  if (!condition) throw new StepFailed(message);
}

/** Polls `probe` until it returns a truthy value; fails with `message` after `ms`. */
async function until(probe, message, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new StepFailed(message);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One run of the flow in a fresh context; returns the record's id. */
async function run(browser, { origin, email, password, doctorId, branchId, viewport, javaScript }) {
  const label = `${viewport.width}×${viewport.height}, JavaScript ${javaScript ? 'on' : 'off'}`;
  const log = (message) => console.log(`browser (${label}): ${message}`);
  const doctorPath = `/doctors/${doctorId}?branch_id=${branchId}`;
  /** Console errors, uncaught exceptions, CSP violations and 5xx answers of every page. */
  const problems = [];
  const context = await browser.newContext({ locale: 'ru-RU', viewport, javaScriptEnabled: javaScript });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  try {
    if (javaScript) {
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
    }
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
    const fitsWidth = async (where) => {
      const { scroll, inner } = await page.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        inner: window.innerWidth,
      }));
      check(scroll <= inner, `${where}: the page is ${scroll} px wide in a ${inner} px window`);
    };
    const weekTitle = async () => ((await page.locator('#slots .week-title').textContent()) ?? '').trim();
    const weekInUrl = () => new URL(page.url()).searchParams.get('week');
    /** The week the picker shows, as its form keeps it. */
    const shownWeek = () => page.locator('#slots input[name="week"]').inputValue();
    /**
     * Follows a picker link: htmx swaps #slots in place and puts the week into the address,
     * or (without JavaScript) the doctor page loads at that week.
     */
    const followPickerLink = async (link, what) => {
      if (javaScript) {
        await page.evaluate(() => {
          document.querySelector('#slots').dataset.before = 'yes';
        });
        const answered = page.waitForResponse((r) => new URL(r.url()).pathname === `/doctors/${doctorId}/slots`);
        await link.click();
        const response = await answered;
        check(response.ok(), `${what}: the picker answered ${response.status()}`);
        await until(
          () => page.evaluate(() => document.querySelector('#slots')?.dataset.before === undefined),
          `${what}: the picker was not swapped`,
        );
      } else {
        const loaded = page.waitForEvent('load');
        await link.click();
        await loaded;
      }
      check(new URL(page.url()).pathname === `/doctors/${doctorId}`, `${what} left the doctor page for ${pathOf()}`);
      await until(async () => weekInUrl() === (await shownWeek()), `${what}: the address ${pathOf()} does not name the week shown`);
    };

    // 1. Log in, with the doctor's page as the next stop.
    log('log in');
    await page.goto(`${origin}/login?next=${encodeURIComponent(doctorPath)}`);
    check((await page.locator('h1').textContent())?.includes('Вход'), `the login page is not shown at ${page.url()}`);
    await page.getByLabel('Электронная почта').fill(email);
    await page.getByLabel('Пароль').fill(password);
    await page.getByRole('button', { name: 'Войти', exact: true }).click();
    await page.waitForURL((url) => url.pathname === `/doctors/${doctorId}`).catch(async () => {
      const alert = await page.locator('[role="alert"]').allTextContents();
      throw new StepFailed(`after "Войти" the browser is at ${pathOf()}, not the doctor's page ${alert.join(' ')}`);
    });
    const cookies = await context.cookies(origin);
    const session = cookies.find((c) => SESSION_COOKIES.includes(c.name));
    check(session?.httpOnly, 'the session cookie is missing or not HttpOnly');
    if (javaScript) {
      await until(
        () => page.evaluate(() => typeof window.htmx === 'object' && window.htmx !== null),
        'htmx did not load on the doctor page (blocked by CSP or missing /static/htmx.min.js?)',
      );
    }

    // 2. The week picker: seven days from today, no week before it.
    log(`doctor's page ${pathOf()}`);
    check(await page.getByRole('heading', { name: 'Записаться на приём' }).isVisible(), 'no "Записаться на приём" section');
    check((await page.locator('#slots .week-column').count()) === 7, 'the picker does not show seven days');
    check((await page.locator('#slots a[rel="prev"]').count()) === 0, 'today\'s week offers a week before it');
    check((await page.locator('#slots').textContent()).includes('время '), 'the times are not labelled with the city');
    await fitsWidth("the doctor's page");
    const firstWeek = await weekTitle();

    // A week forward: the address names it; reload shows it again.
    await followPickerLink(page.locator('#slots a[rel="next"]'), '"Следующая неделя"');
    await until(async () => (await weekTitle()) !== firstWeek, 'the week did not change after "Следующая неделя"');
    const secondWeek = await weekTitle();
    const secondWeekStart = weekInUrl();
    check((await page.locator('#slots a[rel="prev"]').count()) === 1, 'the second week has no way back');
    await page.reload();
    check((await weekTitle()) === secondWeek, `reload shows "${await weekTitle()}", not the chosen week "${secondWeek}"`);
    check(weekInUrl() === secondWeekStart, 'reload lost the week in the address');
    // A week back, then the browser's Back: the chosen week again.
    await followPickerLink(page.locator('#slots a[rel="prev"]'), '"Предыдущая неделя"');
    await until(async () => (await weekTitle()) === firstWeek, 'the week before is not today\'s');
    await page.goBack();
    await until(async () => (await weekTitle()) === secondWeek, `Back shows "${await weekTitle()}", not "${secondWeek}"`);
    check(weekInUrl() === secondWeekStart, `Back lost the week in the address: ${pathOf()}`);
    log(`weeks "${firstWeek}" and "${secondWeek}"; reload and Back keep the week`);

    // 3. «Ближайшее свободное время»: the week of the first free time, also after reload.
    await followPickerLink(page.getByRole('link', { name: 'Ближайшее свободное время' }), '"Ближайшее свободное время"');
    const free = page.locator('#slots a.slot.free');
    await until(async () => (await free.count()) > 0, 'the nearest free time shows no free time');
    if (javaScript) {
      check((await page.locator('#slots [role="status"]').textContent()).includes('Ближайшее свободное время:'), 'the jump does not say what it found');
      check((await page.locator('#slots a.slot.nearest').count()) === 1, 'the nearest time is not marked');
    }
    const jumpedWeek = await weekTitle();
    await page.reload();
    check((await weekTitle()) === jumpedWeek, 'reload after the jump shows another week');
    const slot = free.first();
    const time = (await slot.textContent()).trim();
    log(`nearest free time ${jumpedWeek} ${time}`);

    // 4. The confirmation page: the visit in full, back to the chosen week.
    await Promise.all([page.waitForURL((url) => url.pathname === `/doctors/${doctorId}/book`), slot.click()]);
    check(await page.getByRole('heading', { name: 'Подтвердите запись' }).isVisible(), `no confirmation page at ${pathOf()}`);
    const summary = await page.locator('dl.visit-summary').textContent();
    check(summary.includes(time), `the confirmation page does not show the time ${time}: ${summary}`);
    check(/(пн|вт|ср|чт|пт|сб|вс), \d+ /.test(summary), `no weekday and date on the confirmation page: ${summary}`);
    check(summary.includes('время '), 'the confirmation page does not name the city of the time');
    check(summary.includes('Стоимость'), `the confirmation page shows no price: ${summary}`);
    const back = await page.getByRole('link', { name: '← Выбрать другое время' }).getAttribute('href');
    check(back.includes('week='), `"Выбрать другое время" does not return to the week: ${back}`);
    await fitsWidth('the confirmation page');
    await page.getByLabel('Комментарий для врача').fill(COMMENT);
    await page.getByRole('button', { name: 'Записаться', exact: true }).click();
    await page
      .waitForURL((url) => /^\/cabinet\/records\/\d+$/.test(url.pathname) && url.searchParams.get('booked') === '1')
      .catch(async () => {
        const alert = await page.locator('[role="alert"]').allTextContents();
        throw new StepFailed(`after "Записаться" the browser is at ${pathOf()}, not the booked record ${alert.join(' ')}`);
      });
    const recordId = new URL(page.url()).pathname.split('/').pop();
    check((await page.locator('[role="status"]').first().textContent())?.includes('Вы записаны'), 'the record page does not say "Вы записаны"');
    check((await page.locator('.record-status').textContent()).includes('Запись активна'), 'the new record is not "Запись активна"');
    check((await page.locator('dl.visit-summary').textContent()).includes(COMMENT), 'the record page does not show the comment');
    await fitsWidth('the record page');
    await mkdir(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, `booked-${viewport.width}-${javaScript ? 'js' : 'nojs'}.png`), fullPage: true });
    log(`booked record ${recordId}`);

    // 5. Move through the record page's week picker.
    const recordPath = `/cabinet/records/${recordId}`;
    const whenBefore = await page.locator('dl.visit-summary').textContent();
    const radios = page.locator('input[type="radio"][name="start"]');
    for (let week = 0; (await radios.count()) === 0; week += 1) {
      check(week < MAX_WEEKS, `no free time to move to in ${MAX_WEEKS} weeks`);
      await Promise.all([
        page.waitForURL((url) => url.pathname === recordPath && url.searchParams.has('week')),
        page.getByRole('link', { name: 'Следующая неделя →' }).click(),
      ]);
    }
    await fitsWidth('the move picker');
    const target = radios.first();
    const targetTime = (await target.locator('xpath=..').textContent()).trim();
    await target.check();
    await page.getByRole('button', { name: 'Перенести' }).click();
    await page.waitForURL((url) => url.pathname === recordPath && url.searchParams.get('moved') === '1').catch(async () => {
      const alert = await page.locator('[role="alert"], .alert').allTextContents();
      throw new StepFailed(`after "Перенести" the browser is at ${pathOf()} ${alert.join(' ')}`);
    });
    const whenAfter = await page.locator('dl.visit-summary').textContent();
    check(whenAfter !== whenBefore && whenAfter.includes(targetTime), `the record was not moved to ${targetTime}: ${whenAfter}`);
    log(`moved to ${targetTime}`);

    // 6. Cancel: the question first, with a reason; then «Записаться снова».
    await Promise.all([
      page.waitForURL((url) => url.pathname === `${recordPath}/cancel`),
      page.getByRole('link', { name: 'Отменить запись…' }).click(),
    ]);
    check(await page.getByRole('heading', { name: 'Отменить запись?' }).isVisible(), 'no question before cancelling');
    await fitsWidth('the cancel question');
    await page.getByLabel('Причина отмены').fill(REASON);
    await page.getByRole('button', { name: 'Да, отменить запись' }).click();
    await page.waitForURL((url) => url.pathname === recordPath && url.searchParams.get('cancelled') === '1');
    check((await page.locator('.record-status').textContent()).includes('Запись отменена'), 'the record is not "Запись отменена"');
    check((await page.locator('dl.visit-summary').textContent()).includes(REASON), 'the reason is not shown');
    check(await page.getByRole('link', { name: 'Записаться снова' }).isVisible(), 'no "Записаться снова" after cancelling');
    check((await page.getByRole('link', { name: 'Отменить запись…' }).count()) === 0, 'a cancelled record still offers to cancel');
    const again = await page.getByRole('link', { name: 'Записаться снова' }).getAttribute('href');
    check(again.startsWith(doctorPath), `"Записаться снова" does not lead to the doctor in the branch: ${again}`);
    await fitsWidth('the cancelled record');
    log('cancelled');

    check(problems.length === 0, `the pages reported problems:\n  ${problems.join('\n  ')}`);
    return recordId;
  } catch (err) {
    let message = err instanceof StepFailed ? err.message : err.stack || String(err);
    await mkdir(SHOTS, { recursive: true }).catch(() => {});
    await page.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true }).catch(() => {});
    message = `(${label}) ${message}\n  (at ${page.url()}; screenshot target/browser/failure.png)`;
    if (problems.length > 0 && !message.includes('reported problems')) {
      message += `\n  the pages also reported:\n  ${problems.join('\n  ')}`;
    }
    throw new StepFailed(message);
  } finally {
    await context.close();
  }
}

async function main() {
  const [base, email, password, doctorId, branchId] = process.argv.slice(2);
  if (!base || !email || !password || !/^\d+$/.test(doctorId ?? '') || !/^\d+$/.test(branchId ?? '')) {
    throw new StepFailed('usage: node book_and_cancel.mjs BASE_URL EMAIL PASSWORD DOCTOR_ID BRANCH_ID');
  }
  const origin = new URL(base).origin;
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
  let runs = 0;
  try {
    for (const javaScript of [true, false]) {
      for (const viewport of VIEWPORTS) {
        const started = Date.now();
        const recordId = await run(browser, { origin, email, password, doctorId, branchId, viewport, javaScript });
        console.log(`RECORD_ID=${recordId}`);
        console.log(`browser: ${viewport.width}×${viewport.height}, JavaScript ${javaScript ? 'on' : 'off'}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
        runs += 1;
      }
    }
  } finally {
    await browser.close();
  }
  console.log(`RUNS=${runs}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    const message = err instanceof StepFailed ? err.message : err.stack || String(err);
    console.error(`browser test failed: ${message}`);
    process.exit(1);
  },
);
