// Books and cancels one visit through the typed client, printing each step:
// log in as the demo patient, list the doctors, read the first doctor's schedule in one of his
// branches for the next 14 days, book the first free slot (the next one on 409 `slot_taken`),
// cancel the visit. Exits 1 on any other failure.
//
//   scripts/ts-client.sh run-example http://127.0.0.1:8080
//   (or: SOVAMED_URL=http://127.0.0.1:8080 node <compiled>/example/book.js)
//
// SOVAMED_EMAIL and SOVAMED_PASSWORD change the account (default: the demo patient). A staff or
// admin account signs in with a second factor (`otp` in the login body; the server's
// MFA_REQUIRED_ROLES), which this example does not send: run the server with
// MFA_REQUIRED_ROLES= (set but empty) to try it with such an account.

import { createSovamedClient, errorCode, newIdempotencyKey, type Schemas } from "../src/index.js";

/** Stops the example: prints the step that failed and the answer, exits 1. */
function fail(step: string, response: Response | undefined, error: unknown): never {
  const status = response ? `HTTP ${response.status}` : "no answer";
  console.error(`FAILED: ${step}: ${status}: ${JSON.stringify(error)}`);
  process.exit(1);
}

/** `YYYY-MM-DD` of today + `days` (UTC; a day early in the far east only widens the window). */
function day(days: number): string {
  return new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);
}

async function main(): Promise<void> {
  const baseUrl = process.argv[2] ?? process.env.SOVAMED_URL;
  if (!baseUrl) {
    console.error("usage: book.js BASE_URL   (or set SOVAMED_URL), e.g. http://127.0.0.1:8080");
    process.exit(2);
  }
  const email = process.env.SOVAMED_EMAIL ?? "patient@demo.sovamed.ru";
  const password = process.env.SOVAMED_PASSWORD ?? "sova-patient-demo";

  // 1. Log in: the answer carries the access token.
  const anonymous = createSovamedClient(baseUrl);
  const login = await anonymous.POST("/api/v1/user/login", { body: { email, password } });
  if (!login.data) fail("log in", login.response, login.error);
  console.log(`1. logged in as ${login.data.user.full_name} (${login.data.user.role}), token for ${login.data.expires_in} s`);
  const api = createSovamedClient(baseUrl, { token: login.data.token });

  // 2. The doctors.
  const list = await api.GET("/api/v1/specialists", { params: { query: { per_page: 200 } } });
  if (!list.data) fail("list specialists", list.response, list.error);
  // Every list is {items, total, page, per_page}.
  const specialists: Schemas["SpecialistCard"][] = list.data.items;
  const doctor = specialists.find((s) => s.branches.length > 0);
  const branch = doctor?.branches[0];
  if (!doctor || !branch) fail("pick a doctor", list.response, "no specialist works in a branch");
  console.log(`2. ${list.data.total} specialists; the first: ${doctor.full_name} (#${doctor.id}) in ${branch.name} (#${branch.id})`);

  // 3. His schedule for the next 14 days (the API takes at most 31).
  const schedule = await api.GET("/api/v1/specialist/schedule", {
    params: { query: { specialist_id: doctor.id, branch_id: branch.id, date_from: day(0), date_to: day(13) } },
  });
  if (!schedule.data) fail("read the schedule", schedule.response, schedule.error);
  const free = schedule.data.days.flatMap((d) => d.slots).filter((slot) => slot.free);
  console.log(
    `3. schedule ${day(0)}..${day(13)} (${schedule.data.timezone}, source ${schedule.data.source}): ${free.length} free slots`,
  );

  // 4. Book the first free slot; on 409 `slot_taken` (someone was faster) try the next one.
  // One Idempotency-Key per attempt: a retry of the same attempt would reuse it.
  let record: Schemas["RecordOut"] | undefined;
  for (const slot of free) {
    const booking = await api.POST("/api/v1/records", {
      params: { header: { "Idempotency-Key": newIdempotencyKey() } },
      body: { specialist_id: doctor.id, branch_id: branch.id, start: slot.start },
    });
    if (booking.data) {
      record = booking.data; // 201: the record itself; Location: /api/v1/records/{id}
      break;
    }
    if (booking.response.status === 409 && errorCode(booking.error) === "slot_taken") {
      console.log(`4. ${slot.start} was just taken, trying the next slot`);
      continue;
    }
    fail(`book ${slot.start}`, booking.response, booking.error);
  }
  if (!record) fail("book", undefined, "no free slot in the next 14 days");
  console.log(`4. booked record #${record.id}: ${record.start} .. ${record.end}, ${record.specialist.full_name}, ${record.branch.address}, status ${record.status}`);

  // 5. Cancel it again (the answer is the record itself).
  const cancel = await api.POST("/api/v1/records/{id}/cancel", { params: { path: { id: record.id } } });
  if (!cancel.data) fail(`cancel record #${record.id}`, cancel.response, cancel.error);
  console.log(`5. cancelled record #${cancel.data.id}: status ${cancel.data.status}`);
}

main().catch((error: unknown) => {
  // Network errors (server down, bad URL) land here: fetch rejects.
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : "";
  console.error(`FAILED: ${error instanceof Error ? error.message : String(error)}${cause}`);
  process.exit(1);
});
