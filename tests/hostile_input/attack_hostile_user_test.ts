/**
 * Attack: a hostile signed-in user against the public SQL API (issue 12).
 *
 * The attacker calls every public wrapper as PostgREST would (role authenticated,
 * their own claims): boundary and absurd values (intervals, NULs and control
 * characters, huge strings and arrays), other users' ids, sequences of calls, and
 * concurrent calls. After each case:
 *   - another user's schedule still dispatches: dispatch() is run in a transaction
 *     that is rolled back, and must queue the victim's request;
 *   - the victim's schedule, mailbox and credential are untouched;
 *   - the rate limits hold (re-enabling never makes a schedule due sooner than one
 *     interval after the last run; at most 10 mailboxes per user, also under
 *     concurrency).
 * Refusals carry a generic message: never a constraint name or the failing row.
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { connect } from "../support/local_stack.ts";
import { asUser as asUserIn, Fixtures } from "../support/attack_support.ts";

const sql = connect();
const fixtures = new Fixtures(sql);
const cases: Record<string, number> = {};
const count = (what: string, n = 1) => cases[what] = (cases[what] ?? 0) + n;
const rollBack = new Error("roll back");

function asUser<T>(userId: string, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  return asUserIn(sql, userId, fn);
}

/** Runs the call; "ok", or the SQLSTATE and message it failed with. */
async function attempt(call: () => Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await call();
    return { code: "ok", message: "" };
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    return { code: code ?? "?", message: message ?? String(error) };
  }
}

function assertGeneric(refusal: { code: string; message: string }, what: string) {
  assert.notEqual(refusal.code, "ok", `${what}: accepted`);
  assert.doesNotMatch(refusal.message, /constraint|failing row|relation|_check\b/i, what);
}

// ---------------------------------------------------------------------------
// The victim: a schedule and a mailbox the attacker must never reach or break
// ---------------------------------------------------------------------------
let victim = "";
let victimMailbox = "";

async function victimState() {
  const [schedule] = await sql`
    select every, enabled, next_run_at, consecutive_failures, paused_reason, last_error, updated_at
      from auto_sync.schedules where user_id = ${victim}`;
  const [mailbox] = await sql`
    select m.host, m.port, m.username, m.tls_mode, m.auth_kind, m.folders, m.label, m.enabled, m.updated_at,
           s.decrypted_secret
      from public.mailboxes m
      join auto_sync.mailbox_credentials c on c.mailbox_id = m.id
      join vault.decrypted_secrets s on s.id = c.secret_id
     where m.id = ${victimMailbox}`;
  return { schedule: { ...schedule }, mailbox: { ...mailbox } };
}
let victimBefore: Awaited<ReturnType<typeof victimState>>;

/**
 * The victim's schedule, made due first in line, is dispatched by the next tick; all
 * rolled back, so nothing is sent and nothing stays.
 */
async function assertVictimDispatches(after: string) {
  const outcome = await sql.begin(async (tx) => {
    await tx`update auto_sync.schedules set next_run_at = '1990-01-01' where user_id = ${victim}`;
    await tx`select auto_sync.dispatch()`;
    const [row] = await tx`
      select count(*)::int as n from auto_sync.runs
       where user_id = ${victim} and status = 'dispatched' and created_at = now()`;
    throw Object.assign(rollBack, { dispatched: row.n as number });
  }).catch((error) => {
    if (error !== rollBack) throw error;
    return (error as Error & { dispatched: number }).dispatched;
  });
  assert.equal(outcome, 1, `after ${after}: the victim's schedule is still dispatched`);
  assert.deepEqual(
    await victimState(),
    victimBefore,
    `after ${after}: the victim's data is untouched`,
  );
}

/** The attacker's schedule never holds a value outside the bounds. */
async function assertScheduleBounded(userId: string, after: string) {
  const rows = await sql`
    select every from auto_sync.schedules
     where user_id = ${userId} and not (every between interval '5 minutes' and interval '30 days')`;
  assert.equal(
    rows.length,
    0,
    `after ${after}: the attacker's interval is within 5 minutes..30 days`,
  );
}

Deno.test({
  name: "set up: a victim with an enabled schedule and a mailbox",
  fn: async () => {
    victim = await fixtures.user("victim");
    await sql`select auto_sync.enable(${victim}, '30 minutes')`;
    await sql`update auto_sync.schedules set next_run_at = now() + interval '1 day' where user_id = ${victim}`;
    victimMailbox = await asUser(victim, async (tx) => {
      const [row] = await tx`
        select public.add_mailbox(p_host := 'imap.victim.example', p_port := 993, p_username := 'victim',
                                  p_credential := 'victim-password', p_label := 'mine') as id`;
      return row.id as string;
    });
    victimBefore = await victimState();
  },
});

Deno.test("intervals: absurd and boundary values are refused or bounded; the victim still dispatches", async () => {
  const attacker = await fixtures.user("hostile");
  const intervals: [string, boolean][] = [
    ["300000 years", false],
    ["2147483647 days", false],
    ["178000000 years", false],
    ["P1000Y", false],
    ["30 days 1 second", false],
    ["1 mon 1 day", false],
    ["-1 minute", false],
    ["-300000 years", false],
    ["0", false],
    ["1 second", false],
    ["4 minutes 59.999999 seconds", false],
    ["1 year -11 months -1 day", true], // 1 month (30 days) less a day: 29 days
    ["5 minutes", true],
    ["30 days", true],
    ["1 mon", true],
    ["720 hours", true],
  ];
  for (const [every, accepted] of intervals) {
    const result = await attempt(() =>
      asUser(attacker, (tx) => tx`select * from public.enable_auto_sync(${every}::interval)`)
    );
    if (accepted) {
      assert.equal(result.code, "ok", `${every}: ${result.message}`);
    } else {
      assertGeneric(result, every);
      assert.ok(
        ["22023", "22008", "22015", "22007"].includes(result.code),
        `${every}: ${result.code} ${result.message}`,
      );
    }
    await assertScheduleBounded(attacker, every);
    await assertVictimDispatches(`enable_auto_sync('${every}')`);
    count("interval");
  }
});

Deno.test("mailbox fields: NULs, control characters, huge strings and arrays are refused, generically", async () => {
  const attacker = await fixtures.user("hostile");
  const base = {
    host: "imap.example.com",
    port: 993,
    username: "me",
    credential: "pw",
    tls: "tls",
    auth: "password",
    folders: ["INBOX"],
    label: "x" as string | null,
  };
  const variants: Record<string, Partial<typeof base>> = {
    "escape sequence in label": { label: "\u001b[2J\u001b[31mowned" },
    "bell in label": { label: "ding\u0007" },
    "CR LF in username": { username: "me\r\nA1 LOGOUT" },
    "tab in username": { username: "me\there" },
    "newline in a folder": { folders: ["INBOX\n"] },
    "empty folder": { folders: ["INBOX", ""] },
    "no folder": { folders: [] },
    "51 folders": { folders: Array.from({ length: 51 }, (_, i) => `F${i}`) },
    "10,000 folders": { folders: Array.from({ length: 10_000 }, (_, i) => `F${i}`) },
    "a 20,000-character folder": { folders: ["x".repeat(20_000)] },
    "a 101-character label": { label: "x".repeat(101) },
    "a 1 MB label": { label: "x".repeat(1_000_000) },
    "a 321-character username": { username: "u".repeat(321) },
    "empty username": { username: "" },
    "a 300-character host": { host: `${"a".repeat(290)}.example.com` },
    "host with a space": { host: "imap example.com" },
    "host with a NUL": { host: "imap\u0000.example.com" },
    "port 0": { port: 0 },
    "port 70000": { port: 70_000 },
    "port -1": { port: -1 },
    "tls none": { tls: "none" },
    "auth kind kerberos": { auth: "kerberos" },
    "empty credential": { credential: "" },
    "an 8,193-character credential": { credential: "c".repeat(8_193) },
    "a NUL in the credential": { credential: "pw\u0000" },
  };
  for (const [name, change] of Object.entries(variants)) {
    const v = { ...base, ...change };
    const result = await attempt(() =>
      asUser(
        attacker,
        (tx) =>
          tx`select public.add_mailbox(p_host := ${v.host}, p_port := ${v.port}, p_username := ${v.username},
               p_credential := ${v.credential}, p_tls_mode := ${v.tls}, p_auth_kind := ${v.auth},
               p_folders := ${v.folders}, p_label := ${v.label})`,
      )
    );
    assertGeneric(result, name);
    count("mailbox field");
  }
  const [{ n }] =
    await sql`select count(*)::int as n from public.mailboxes where user_id = ${attacker}`;
  assert.equal(n, 0, "no refused mailbox was stored");
  await assertVictimDispatches("the mailbox fuzzing");
});

Deno.test("other users' ids: the victim's mailbox cannot be changed, redirected or removed", async () => {
  const attacker = await fixtures.user("hostile");
  const calls: [
    string,
    (tx: postgres.TransactionSql) => Promise<postgres.RowList<postgres.Row[]>>,
  ][] = [
    [
      "update host and credential",
      (tx) =>
        tx`select public.update_mailbox(${victimMailbox}::uuid, p_host := 'evil.example', p_credential := 'x') as ok`,
    ],
    [
      "update label",
      (tx) => tx`select public.update_mailbox(${victimMailbox}::uuid, p_label := 'pwned') as ok`,
    ],
    [
      "disable",
      (tx) => tx`select public.update_mailbox(${victimMailbox}::uuid, p_enabled := false) as ok`,
    ],
    ["remove", (tx) => tx`select public.remove_mailbox(${victimMailbox}::uuid) as ok`],
  ];
  for (const [name, call] of calls) {
    const [row] = await asUser(attacker, call);
    assert.equal(row.ok, false, `${name}: the victim's mailbox is not found for the attacker`);
    count("other user's id");
  }
  // A user id is never an argument: the wrappers act for auth.uid() only.
  const [{ enabled }] = await asUser(
    attacker,
    (tx) => tx`select count(*)::int as enabled from public.get_auto_sync()`,
  );
  assert.equal(enabled, 0, "the attacker sees no schedule but their own");
  count("other user's id");
  await assertVictimDispatches("calls on the victim's ids");
});

Deno.test("enable / disable / enable: never due sooner than one interval after the last run", async () => {
  const attacker = await fixtures.user("hostile");
  await asUser(attacker, (tx) => tx`select * from public.enable_auto_sync('10 minutes')`);
  // The attacker's schedule just ran (as dispatch() leaves it).
  await sql`
    insert into auto_sync.runs (user_id, trigger, status, scheduled_for, dispatched_at, finished_at)
    values (${attacker}, 'schedule', 'succeeded', now(), now(), now())`;
  await sql`update auto_sync.schedules set next_run_at = now() + interval '10 minutes' where user_id = ${attacker}`;
  const earliest = async () => {
    const [row] = await sql`
      select s.next_run_at >= (select max(r.created_at) from auto_sync.runs r where r.user_id = s.user_id) + s.every
               as respected, s.enabled
        from auto_sync.schedules s where s.user_id = ${attacker}`;
    return row;
  };
  const sequences: [string, string[]][] = [
    ["disable, enable", ["disable", "enable 10 minutes"]],
    ["disable, enable x3", ["disable", "enable 10 minutes", "disable", "enable 10 minutes"]],
    ["disable, enable with a shorter interval", ["disable", "enable 5 minutes"]],
    ["enable again with the minimum", ["enable 5 minutes"]],
  ];
  for (const [name, steps] of sequences) {
    for (const step of steps) {
      await asUser(
        attacker,
        (tx) =>
          step === "disable"
            ? tx`select public.disable_auto_sync()`
            : tx`select * from public.enable_auto_sync(${step.slice("enable ".length)}::interval)`,
      );
    }
    const state = await earliest();
    assert.deepEqual({ ...state }, { respected: true, enabled: true }, name);
    count("rate limit sequence");
  }
  // A failure pause can still be cleared (the user fixed their mailbox), not as a way to run sooner.
  await sql`
    update auto_sync.schedules set enabled = false, consecutive_failures = 8,
           paused_reason = 'Paused after 8 failed runs in a row: test'
     where user_id = ${attacker}`;
  await asUser(attacker, (tx) => tx`select * from public.enable_auto_sync('5 minutes')`);
  const [paused] = await sql`
    select enabled, consecutive_failures, paused_reason from auto_sync.schedules where user_id = ${attacker}`;
  assert.deepEqual({ ...paused }, { enabled: true, consecutive_failures: 0, paused_reason: null });
  assert.deepEqual({ ...(await earliest()) }, { respected: true, enabled: true });
  count("rate limit sequence");
  await assertVictimDispatches("the enable/disable sequences");
});

Deno.test("add / update / remove mailbox: the cap holds, connection changes need the credential", async () => {
  const attacker = await fixtures.user("hostile");
  const add = (n: number) =>
    attempt(() =>
      asUser(
        attacker,
        (tx) =>
          tx`select public.add_mailbox(p_host := ${`imap${n}.example.com`}, p_port := 993, p_username := 'me',
               p_credential := 'pw') as id`,
      )
    );
  for (let n = 1; n <= 10; n++) assert.equal((await add(n)).code, "ok");
  const eleventh = await add(11);
  assert.equal(eleventh.code, "54000");
  assertGeneric(eleventh, "the eleventh mailbox");
  count("mailbox sequence");
  const [first] =
    await sql`select id from public.mailboxes where user_id = ${attacker} order by created_at limit 1`;
  await asUser(attacker, (tx) => tx`select public.remove_mailbox(${first.id}::uuid)`);
  assert.equal((await add(12)).code, "ok", "after a removal there is room for one more");
  assert.equal((await add(13)).code, "54000");
  count("mailbox sequence", 2);

  const [mine] =
    await sql`select id from public.mailboxes where user_id = ${attacker} order by created_at limit 1`;
  for (
    const change of [
      { p_host: "evil.example" },
      { p_port: 143 },
      { p_tls_mode: "plain" },
      { p_username: "other" },
      { p_auth_kind: "oauth2" },
    ]
  ) {
    const [[field, value]] = Object.entries(change);
    const result = await attempt(() =>
      asUser(
        attacker,
        (tx) =>
          tx`select public.update_mailbox(p_mailbox_id := ${mine.id}::uuid, ${
            tx(field)
          } := ${value})`,
      )
    );
    assert.equal(result.code, "22023", `${field} without the credential: ${result.message}`);
    assertGeneric(result, field);
    count("mailbox sequence");
  }
  await assertVictimDispatches("the mailbox sequences");
});

Deno.test("concurrent calls: the mailbox cap and the schedule stay consistent", async () => {
  const attacker = await fixtures.user("hostile");
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, n) =>
      attempt(() =>
        asUser(
          attacker,
          (tx) =>
            tx`select public.add_mailbox(p_host := ${`c${n}.example.com`}, p_port := 993, p_username := 'me',
                 p_credential := 'pw')`,
        )
      )),
  );
  assert.equal(
    results.filter((r) => r.code === "ok").length,
    10,
    "exactly 10 of 20 concurrent adds",
  );
  assert.ok(results.every((r) => r.code === "ok" || r.code === "54000"));
  const [{ n }] =
    await sql`select count(*)::int as n from public.mailboxes where user_id = ${attacker}`;
  assert.equal(n, 10);
  count("concurrent", 20);

  const toggles = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      attempt(() =>
        asUser(
          attacker,
          (tx) =>
            i % 2 === 0
              ? tx`select * from public.enable_auto_sync(${
                i % 4 === 0 ? "5 minutes" : "300000 years"
              }::interval)`
              : tx`select public.disable_auto_sync()`,
        )
      )),
  );
  assert.ok(
    toggles.every((r, i) => r.code === "ok" || (i % 4 === 2 && r.code === "22023")),
    JSON.stringify(toggles.filter((r) => r.code !== "ok")),
  );
  await assertScheduleBounded(attacker, "concurrent toggles");
  count("concurrent", 20);
  await assertVictimDispatches("concurrent calls");
});

Deno.test({
  name: "clean up, and the case counts",
  fn: async () => {
    await fixtures.cleanup(); // the victim too
    console.log(`hostile-user cases: ${JSON.stringify(cases)}`);
    await sql.end();
  },
});
