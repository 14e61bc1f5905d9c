// A visitor without an account books with an SMS code and cancels through the SMS link, in
// headless Chromium: at 1280 px and at 390 px wide, each with JavaScript on and off.
//
//   node tests/browser/anonymous_booking.mjs BASE_URL SMS_EMULATOR_URL DOCTOR_ID BRANCH_ID
//
// Run by tests/browser.rs. The code and the link are read from the SMS emulator's list of
// received messages, as the visitor would read them on the phone. Prints `VISITS=<n>` and
// exits 0 on success; prints the failed step and exits 1 otherwise (a screenshot of the
// failing page goes to target/browser/anonymous-failure.png).

import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = path.join(REPO, 'target', 'browser');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const MAX_WEEKS = 4;

class StepFailed extends Error {}

function check(condition, message) {
  if (!condition) throw new StepFailed(message);
}

async function until(probe, message, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new StepFailed(message);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The newest SMS to `digits` whose text passes `test`, once more than `after` such exist. */
async function smsTo(smsUrl, digits, test, after, what) {
  return until(async () => {
    const response = await fetch(`${smsUrl}/_emulator/messages`);
    const messages = (await response.json()).filter((m) => m.to === digits && test(m.text));
    return messages.length > after ? messages[messages.length - 1].text : null;
  }, `no ${what} reached +${digits}`);
}

async function countSms(smsUrl, digits, test) {
  const response = await fetch(`${smsUrl}/_emulator/messages`);
  return (await response.json()).filter((m) => m.to === digits && test(m.text)).length;
}

async function fitsWidth(page, width, where) {
  const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
  check(scroll <= width + 1, `${where}: the page is ${scroll} px wide in a ${width} px window`);
}

async function visit(browser, { origin, smsUrl, doctorId, branchId, width, javaScript, phone }) {
  const label = `${width}px, JavaScript ${javaScript ? 'on' : 'off'}`;
  const log = (m) => console.log(`browser (${label}): ${m}`);
  const context = await browser.newContext({
    locale: 'ru-RU',
    viewport: { width, height: 900 },
    javaScriptEnabled: javaScript,
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const problems = [];
  page.on('response', (r) => {
    if (r.status() >= 500) problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught exception: ${e.message}`));
  const digits = phone.replace(/\D/g, '');
  try {
    // 1. A free slot on the doctor's page.
    await page.goto(`${origin}/doctors/${doctorId}?branch_id=${branchId}`);
    const free = page.locator('#slots a.slot.free');
    for (let week = 0; (await free.count()) === 0; week += 1) {
      check(week < MAX_WEEKS, `no free slot in ${MAX_WEEKS} weeks`);
      const before = await page.locator('#slots .week-title').textContent();
      await page.locator('#slots a[rel="next"]').click();
      await until(async () => (await page.locator('#slots .week-title').textContent()) !== before, 'the week did not change');
    }
    const time = (await free.first().textContent()).trim();
    await free.first().click();
    await page.waitForURL((url) => url.pathname === `/doctors/${doctorId}/book`);

    // 2. The form without an account; the slot is on it, and login/registration keep it.
    check(await page.getByRole('heading', { name: 'Запись на приём' }).isVisible(), `no booking form at ${page.url()}`);
    check((await page.locator('dl.profile').textContent()).includes(time), `the form does not show ${time}`);
    const loginHref = await page.getByRole('link', { name: 'Войдите' }).getAttribute('href');
    check(decodeURIComponent(loginHref).includes(`/doctors/${doctorId}/book?branch_id=${branchId}`), `the login link drops the slot: ${loginHref}`);
    await fitsWidth(page, width, 'the booking form');
    await page.locator('#last_name').fill('Смирнова');
    await page.locator('#first_name').fill('Анна');
    await page.locator('#phone').fill(phone);
    await page.locator('#birth_date').fill('1988-04-12');
    await page.locator('#consent_personal').check();
    await page.locator('#consent_health').check();
    const codesBefore = await countSms(smsUrl, digits, (t) => t.includes('код'));
    await page.getByRole('button', { name: 'Получить код по SMS' }).click();
    await page.waitForURL((url) => url.pathname === '/phone-code').catch(async () => {
      const alert = await page.locator('[role="alert"]').allTextContents();
      throw new StepFailed(`after the form the browser is at ${page.url()}: ${alert.join(' ')}`);
    });
    log('code page');

    // 3. The code from the SMS.
    await fitsWidth(page, width, 'the code page');
    check((await page.locator('dl.profile').textContent()).includes(time), 'the code page does not show the slot');
    const codeSms = await smsTo(smsUrl, digits, (t) => t.includes('код'), codesBefore, 'code SMS');
    const code = codeSms.match(/\b(\d{6})\b/)[1];
    await page.locator('#code').fill(code);
    await page.getByRole('button', { name: 'Подтвердить' }).click();
    await page.waitForURL((url) => url.pathname.startsWith('/v/') && url.searchParams.get('booked') === '1').catch(async () => {
      const alert = await page.locator('[role="alert"]').allTextContents();
      throw new StepFailed(`after the code the browser is at ${page.url()}: ${alert.join(' ')}`);
    });
    check((await page.locator('[role="status"]').first().textContent()).includes('Вы записаны'), 'the visit page does not say "Вы записаны"');
    await fitsWidth(page, width, 'the visit page');
    log(`booked at ${time}`);

    // 4. The link from the booking SMS opens the visit; cancel it there.
    const booked = await smsTo(smsUrl, digits, (t) => t.includes('/v/'), 0, 'booking SMS with the link');
    const link = booked.match(/https?:\/\/\S+\/v\/[0-9A-Za-z]+/)[0];
    // The link names PUBLIC_BASE_URL; the test server listens elsewhere, so only its path is
    // taken.
    await page.goto(`${origin}${new URL(link).pathname}`);
    check(await page.getByRole('heading', { name: 'Ваша запись на приём' }).isVisible(), `the SMS link does not open the visit: ${link}`);
    // Cancelling asks first, on a page of its own.
    await page.getByRole('link', { name: 'Отменить запись…' }).click();
    await page.waitForURL((url) => url.pathname.startsWith('/v/') && url.pathname.endsWith('/cancel'));
    check(await page.getByRole('heading', { name: 'Отменить запись?' }).isVisible(), 'no question before cancelling');
    await fitsWidth(page, width, 'the cancel question');
    await page.getByRole('button', { name: 'Да, отменить запись' }).click();
    await until(async () => (await page.locator('body').textContent()).includes('Запись отменена'), 'the visit page does not say "Запись отменена"');
    check(await page.getByRole('link', { name: 'Записаться снова' }).isVisible(), 'no "Записаться снова" after cancelling');
    log('cancelled through the SMS link');
    check(problems.length === 0, problems.join('\n'));
  } catch (e) {
    await mkdir(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'anonymous-failure.png'), fullPage: true }).catch(() => {});
    throw new StepFailed(`(${label}) ${e.message}`);
  } finally {
    await context.close();
  }
}

async function main() {
  const [base, smsUrl, doctorId, branchId] = process.argv.slice(2);
  if (!base || !smsUrl || !/^\d+$/.test(doctorId ?? '') || !/^\d+$/.test(branchId ?? '')) {
    throw new StepFailed('usage: node anonymous_booking.mjs BASE_URL SMS_EMULATOR_URL DOCTOR_ID BRANCH_ID');
  }
  const origin = new URL(base).origin;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  let visits = 0;
  try {
    let n = 0;
    for (const width of [1280, 390]) {
      for (const javaScript of [true, false]) {
        n += 1;
        await visit(browser, { origin, smsUrl, doctorId, branchId, width, javaScript, phone: `+7 916 555-44-0${n}` });
        visits += 1;
      }
    }
  } finally {
    await browser.close();
  }
  console.log(`VISITS=${visits}`);
}

main().catch((e) => {
  console.error(e instanceof StepFailed ? `FAILED: ${e.message}` : e);
  process.exit(1);
});
