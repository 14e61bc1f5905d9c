// The public website on its own origin calls the API with fetch, in headless Chromium: the
// preflights, login, refresh, the doctors, a schedule, a phone code and an anonymous booking
// with an Idempotency-Key (reading the exposed Location); from an origin that is not allowed,
// the browser blocks the same call.
//
//   node tests/browser/second_origin.mjs API_BASE SITE_URL OTHER_SITE_URL SMS_EMULATOR_URL EMAIL PASSWORD
//
// Run by tests/browser.rs. Prints `CORS_OK` and exits 0 on success.

import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function main() {
  const [api, site, other, smsUrl, email, password] = process.argv.slice(2);
  check(api && site && other && smsUrl && email && password, 'usage: second_origin.mjs API SITE OTHER SMS EMAIL PASSWORD');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  try {
    const page = await (await browser.newContext()).newPage();
    await page.goto(site);
    // 1. From the allowed origin: log in, refresh, read the directory and a schedule, ask a code.
    const first = await page.evaluate(async ({ api, email, password }) => {
      const json = async (path, init = {}) => {
        const r = await fetch(api + path, {
          ...init,
          headers: { 'content-type': 'application/json', ...(init.headers || {}) },
        });
        return { status: r.status, body: r.status === 204 ? null : await r.json(), headers: r.headers };
      };
      const login = await json('/api/v1/user/login', { method: 'POST', body: JSON.stringify({ email, password }) });
      const refreshed = await json('/api/v1/user/refresh', {
        method: 'POST',
        body: JSON.stringify({ refresh_token: login.body.refresh_token }),
      });
      const me = await fetch(api + '/api/v1/user/me', { headers: { authorization: `Bearer ${refreshed.body.token}` } });
      const doctors = await (await fetch(api + '/api/v1/specialists?per_page=200')).json();
      const doctor = doctors.items.find((d) => d.branches.length > 0);
      const today = new Date().toISOString().slice(0, 10);
      const later = new Date(Date.now() + 13 * 86400e3).toISOString().slice(0, 10);
      const schedule = await (
        await fetch(
          `${api}/api/v1/specialist/schedule?specialist_id=${doctor.id}&branch_id=${doctor.branches[0].id}&date_from=${today}&date_to=${later}`,
        )
      ).json();
      const free = schedule.days.flatMap((d) => d.slots).filter((s) => s.free).map((s) => s.start);
      const code = await json('/api/v1/phone-verifications', {
        method: 'POST',
        body: JSON.stringify({ phone: '+79165557001', purpose: 'booking' }),
      });
      return {
        login: login.status,
        refreshed: refreshed.status,
        rotated: refreshed.body.refresh_token !== login.body.refresh_token,
        me: me.status,
        total: doctors.total,
        doctor: doctor.id,
        branch: doctor.branches[0].id,
        free,
        verification: code.status,
        verificationId: code.body.verification_id,
      };
    }, { api, email, password });
    check(first.login === 200 && first.refreshed === 200 && first.rotated && first.me === 200, `sign-in: ${JSON.stringify(first)}`);
    check(first.total > 0 && first.free.length > 0, `directory and schedule: ${JSON.stringify(first)}`);
    check(first.verification === 202, `phone code: ${JSON.stringify(first)}`);

    // 2. The code, as the visitor reads it on the phone.
    let code;
    for (let i = 0; i < 100 && !code; i += 1) {
      const messages = await (await fetch(smsUrl)).json();
      const sms = messages.filter((m) => m.to === '79165557001' && m.text.includes('код')).pop();
      code = sms?.text.match(/\b(\d{6})\b/)?.[1];
      if (!code) await new Promise((r) => setTimeout(r, 100));
    }
    check(code, 'no code SMS');

    // 3. Confirm and book anonymously with an Idempotency-Key; Location is readable.
    const booked = await page.evaluate(async ({ api, first, code }) => {
      const post = (path, body, headers = {}) =>
        fetch(api + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
      const proof = await (await post(`/api/v1/phone-verifications/${first.verificationId}/confirm`, { code })).json();
      const r = await post(
        '/api/v1/specialist/anonymous-reserve',
        {
          specialist_id: first.doctor,
          branch_id: first.branch,
          start: first.free[0],
          patient: { last_name: 'Смирнова', first_name: 'Анна', phone: '+79165557001', birth_date: '1988-04-12' },
          phone_token: proof.phone_token,
          consent: { personal_data: true, health_data: true },
        },
        { 'Idempotency-Key': 'site-booking-1' },
      );
      return { status: r.status, location: r.headers.get('location'), body: await r.json() };
    }, { api, first, code });
    check(booked.status === 201, `anonymous booking: ${JSON.stringify(booked)}`);
    check(booked.location === `/api/v1/records/${booked.body.id}`, `Location not readable: ${booked.location}`);
    // A JSON body and an Idempotency-Key make both POSTs "non-simple": the browser sent each
    // only after a preflight the server allowed (Chromium does not show preflights to
    // Playwright, but a refused one fails the fetch itself).

    // 4. Another origin: the browser refuses the answer.
    const page2 = await (await browser.newContext()).newPage();
    await page2.goto(other);
    const blocked = await page2.evaluate(async (api) => {
      try {
        await fetch(api + '/api/v1/branches');
        return 'read';
      } catch (e) {
        return `blocked: ${e.name}`;
      }
    }, api);
    check(blocked.startsWith('blocked'), `a call from ${other} was not blocked: ${blocked}`);
    console.log(`booked record ${booked.body.id} from ${site}; ${other}: ${blocked}`);
    console.log('CORS_OK');
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`FAILED: ${e.message}`);
  process.exit(1);
});
