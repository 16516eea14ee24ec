/**
 * Attack: SQL injection through every user-supplied field.
 *
 * Over HTTP, webhook-id, run_id, sub, aud and scope carry SQL (correctly signed, so
 * only validation stands in the way): they must be refused before any SQL runs
 * (401 for the id's shape, 400 for the claims' schema, 403 for aud/scope, which
 * never reach SQL), quickly (no pg_sleep ran) and leave no trace in the ledger.
 *
 * Through the public RPCs a signed-in user calls (enable_auto_sync, add_mailbox,
 * update_mailbox), called in SQL as role authenticated with request.jwt.claims set,
 * as PostgREST would: payloads in free-text fields (label, username, folders, the
 * credential) are stored literally; in constrained fields (host, tls mode, auth
 * kind, interval) they are refused by a type or a check constraint; NUL is refused.
 * The payloads target a sentinel table made for this test, which must still exist,
 * empty, afterwards, along with every table of the project.
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { connect } from "../support/local_stack.ts";
import { nowSeconds } from "../support/signed_requests.ts";
import {
  assertNoSecretIn,
  asUser as asUserIn,
  collectedBodies,
  Fixtures,
  post,
  signClaims,
  signRaw,
} from "../support/attack_support.ts";

const sql = connect();
const fixtures = new Fixtures(sql);
const sentinel = `public.attack_sentinel_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
const mailboxIds: string[] = [];
const counts: Record<string, number> = {};
const count = (what: string, n = 1) => counts[what] = (counts[what] ?? 0) + n;

const projectTables = [
  "auto_sync.settings",
  "auto_sync.schedules",
  "auto_sync.runs",
  "auto_sync.used_request_ids",
  "auto_sync.mailbox_credentials",
  "auto_sync.folder_state",
  "public.mailboxes",
  "public.emails",
  "vault.secrets",
  "auth.users",
  "cron.job",
  "net.http_request_queue",
];

/** SQL in the shapes that break naive string building: quotes, dollar quotes, backslashes, comments, sleeps. */
const payloads = [
  `'; drop table ${sentinel}; --`,
  `'); drop table ${sentinel}; --`,
  `"; drop table ${sentinel}; --`,
  `$$; drop table ${sentinel}; $$`,
  `$x$; insert into ${sentinel} values (1); $x$`,
  `\\'; insert into ${sentinel} values (2); --`,
  `\\\\'; insert into ${sentinel} values (3); --`,
  `' || (select pg_sleep(3)) || '`,
  `1; select pg_sleep(3)`,
  `' or '1'='1`,
  `%s %I %L %%`,
  `E'\\x27; drop table ${sentinel}; --`,
  `\u02bc; drop table ${sentinel}; --`, // modifier letter apostrophe
  `\uff07; drop table ${sentinel}; --`, // fullwidth apostrophe
  `*/ drop table ${sentinel}; /*`,
];

function asUser<T>(userId: string, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  return asUserIn(sql, userId, fn);
}

/** Runs the call and returns the SQLSTATE it failed with, or "ok". */
async function sqlstate(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
    return "ok";
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

async function assertNothingExecuted() {
  const [sentinelRow] = await sql`select to_regclass(${sentinel}) is not null as present`;
  assert.ok(sentinelRow.present, `${sentinel} still exists`);
  const [rows] = await sql.unsafe(`select count(*)::int as n from ${sentinel}`);
  assert.equal(rows.n, 0, "no payload inserted into the sentinel");
  for (const table of projectTables) {
    const [row] = await sql`select to_regclass(${table}) is not null as present`;
    assert.ok(row.present, `${table} still exists`);
  }
}

Deno.test({
  name: "set up: a sentinel table the payloads try to drop or fill",
  fn: async () => {
    await sql.unsafe(`create table ${sentinel} (n integer)`);
    await sql.unsafe(`revoke all on ${sentinel} from public, anon, authenticated`);
  },
});

Deno.test("SQL in webhook-id, run_id, sub, aud and scope is refused before SQL (401/400/403), fast, with no trace", async () => {
  const { runId, claims } = await fixtures.run();
  const failures: string[] = [];
  const started = Date.now();
  const headerSafe = payloads.filter((payload) => /^[\x20-\x7e]*$/.test(payload));
  for (const payload of headerSafe) {
    // The id itself carries the payload, and the body agrees with it.
    const request = signRaw(
      payload,
      String(claims.iat),
      JSON.stringify({ ...claims, run_id: payload }),
    );
    const answer = await post(request);
    if (answer.status !== 401) failures.push(`webhook-id ${payload}: ${answer.status}`);
    count("webhook-id");
  }
  for (const payload of payloads) {
    // aud and scope are strings of at most 64 characters (400 beyond), then compared (403).
    const compared = payload.length <= 64 ? 403 : 400;
    for (
      const [field, expected] of [["run_id", 400], ["sub", 400], ["aud", compared], [
        "scope",
        compared,
      ]] as const
    ) {
      const answer = await post(signClaims({ ...claims, [field]: payload }, { id: runId }));
      if (answer.status !== expected) {
        failures.push(`${field} ${payload}: ${answer.status}, expected ${expected}`);
      }
      count(field);
    }
  }
  // A valid-shaped id that is not the run id (it matches [A-Za-z0-9_-]) with SQL-ish dashes.
  for (const id of ["1--", "x--drop_table", "0-0"]) {
    const answer = await post(signClaims({ ...claims, iat: nowSeconds() }, { id }));
    if (answer.status !== 400) failures.push(`webhook-id ${id}: ${answer.status}`);
    count("webhook-id");
  }
  assert.deepEqual(failures, []);
  assert.ok(Date.now() - started < 10_000, "no payload slept");
  const traces = await sql`
    select request_id from auto_sync.used_request_ids where request_id = any(${payloads}) or request_id in ('1--', 'x--drop_table', '0-0')`;
  assert.deepEqual([...traces], []);
  assert.equal(
    (await sql`select status from auto_sync.runs where id = ${runId}`)[0].status,
    "dispatched",
  );
  await assertNothingExecuted();
});

Deno.test("enable_auto_sync(p_every) as a signed-in user: SQL in the interval is refused by its type, nothing runs", async () => {
  const userId = await fixtures.user("sqli");
  const outcomes = new Set<string>();
  const started = Date.now();
  for (
    const payload of [
      ...payloads,
      `30 minutes'; drop table ${sentinel}; --`,
      "30 minutes\u0000; drop",
      `1 hour${payloads[7]}`,
    ]
  ) {
    const state = await sqlstate(() =>
      asUser(userId, (tx) => tx`select * from public.enable_auto_sync(p_every := ${payload})`)
    );
    outcomes.add(state);
    assert.ok(
      ["22007", "22008", "22015", "22021", "22023"].includes(state),
      `interval ${JSON.stringify(payload)}: ${state}`,
    );
    count("enable_auto_sync");
  }
  assert.ok(Date.now() - started < 5_000, "no payload slept");
  const schedules = await sql`select every from auto_sync.schedules where user_id = ${userId}`;
  assert.deepEqual([...schedules], [], "no schedule was created by a refused call");
  // Control: a real interval works for the same user.
  const [row] = await asUser(
    userId,
    (tx) => tx`select * from public.enable_auto_sync(p_every := ${"45 minutes"})`,
  );
  assert.equal(row.every, "00:45:00");
  await sql`select auto_sync.disable(${userId})`;
  await assertNothingExecuted();
});

Deno.test("add_mailbox as a signed-in user: payloads in label, username, folders and credential are stored literally", async () => {
  const started = Date.now();
  for (const payload of payloads) {
    // One user per payload: a user holds at most 10 mailboxes.
    const userId = await fixtures.user("sqli");
    const folders = [payload, `INBOX/${payload}`];
    const id = await asUser(userId, async (tx) => {
      const [row] = await tx`
        select public.add_mailbox(p_host := ${"imap.example.com"}, p_port := ${993}, p_username := ${payload},
          p_credential := ${payload}, p_folders := ${folders}, p_label := ${payload}) as id`;
      return row.id as string;
    });
    mailboxIds.push(id);
    const [stored] = await asUser(
      userId,
      (tx) => tx`select label, username, folders, host from public.mailboxes where id = ${id}`,
    );
    assert.deepEqual({ ...stored }, {
      label: payload,
      username: payload,
      folders,
      host: "imap.example.com",
    });
    const [secret] = await sql`
      select s.decrypted_secret from auto_sync.mailbox_credentials c
        join vault.decrypted_secrets s on s.id = c.secret_id where c.mailbox_id = ${id}`;
    assert.equal(secret.decrypted_secret, payload, "the credential is stored as given");
    count("add_mailbox stored literally");
  }
  assert.ok(Date.now() - started < 10_000, "no payload slept");
  await assertNothingExecuted();
});

Deno.test("add_mailbox: payloads in host, tls mode and auth kind, and NUL anywhere, are refused by constraints; nothing is stored", async () => {
  const userId = await fixtures.user("sqli");
  const add = (fields: Record<string, unknown>) => {
    const args = {
      p_host: "imap.example.com",
      p_port: 993,
      p_username: "me",
      p_credential: "pw",
      p_tls_mode: "tls",
      p_auth_kind: "password",
      p_folders: ["INBOX"],
      p_label: "x",
      ...fields,
    };
    return sqlstate(() =>
      asUser(
        userId,
        (tx) =>
          tx`select public.add_mailbox(p_host := ${args.p_host as string}, p_port := ${args
            .p_port as number},
             p_username := ${args.p_username as string}, p_credential := ${args
            .p_credential as string},
             p_tls_mode := ${args.p_tls_mode as string}, p_auth_kind := ${args
            .p_auth_kind as string},
             p_folders := ${args.p_folders as string[]}, p_label := ${args.p_label as string})`,
      )
    );
  };
  for (const payload of payloads) {
    for (const field of ["p_host", "p_tls_mode", "p_auth_kind"]) {
      assert.equal(await add({ [field]: payload }), "23514", `${field} ${JSON.stringify(payload)}`);
      count("add_mailbox refused");
    }
    assert.equal(await add({ p_host: `imap.example.com${payload}` }), "23514");
    count("add_mailbox refused");
  }
  for (const field of ["p_label", "p_username", "p_credential", "p_host"]) {
    assert.equal(
      await add({ [field]: `a\u0000'; drop table ${sentinel}; --` }),
      "22021",
      `NUL in ${field}`,
    );
    count("add_mailbox refused");
  }
  assert.equal(await add({ p_folders: ["INBOX", `a\u0000b`] }), "22021", "NUL in a folder");
  assert.equal(await add({ p_label: "x".repeat(101) }), "23514", "label over 100 characters");
  count("add_mailbox refused", 2);
  const [mailboxes] =
    await sql`select count(*)::int as n from public.mailboxes where user_id = ${userId}`;
  assert.equal(mailboxes.n, 0);
  await assertNothingExecuted();
});

Deno.test("update_mailbox: payloads are stored literally in free text, refused in host; another user's mailbox is not touched", async () => {
  const owner = await fixtures.user("sqli");
  const intruder = await fixtures.user("sqli");
  const id = await asUser(owner, async (tx) => {
    const [row] = await tx`
      select public.add_mailbox(p_host := ${"imap.example.com"}, p_port := ${993}, p_username := ${"me"},
        p_credential := ${"pw"}, p_label := ${"mine"}) as id`;
    return row.id as string;
  });
  mailboxIds.push(id);
  for (const payload of payloads) {
    const [updated] = await asUser(
      owner,
      (tx) =>
        tx`select public.update_mailbox(p_mailbox_id := ${id}::uuid, p_username := ${payload}, p_label := ${payload},
           p_folders := ${[payload]}, p_credential := ${payload}) as ok`,
    );
    assert.equal(updated.ok, true);
    const [stored] =
      await sql`select label, username, folders, host from public.mailboxes where id = ${id}`;
    assert.deepEqual({ ...stored }, {
      label: payload,
      username: payload,
      folders: [payload],
      host: "imap.example.com",
    });
    const [secret] = await sql`
      select s.decrypted_secret from auto_sync.mailbox_credentials c
        join vault.decrypted_secrets s on s.id = c.secret_id where c.mailbox_id = ${id}`;
    assert.equal(secret.decrypted_secret, payload);
    count("update_mailbox stored literally");

    const before =
      await sql`select label, username, folders, host, updated_at from public.mailboxes where id = ${id}`;
    const state = await sqlstate(() =>
      asUser(
        owner,
        (tx) =>
          tx`select public.update_mailbox(p_mailbox_id := ${id}::uuid, p_host := ${payload}, p_label := ${"changed"})`,
      )
    );
    assert.equal(state, "23514", `host ${JSON.stringify(payload)}`);
    assert.deepEqual(
      await sql`select label, username, folders, host, updated_at from public.mailboxes where id = ${id}`,
      before,
    );
    count("update_mailbox refused");

    const [other] = await asUser(
      intruder,
      (tx) =>
        tx`select public.update_mailbox(p_mailbox_id := ${id}::uuid, p_label := ${payload}, p_credential := ${"stolen"}) as ok`,
    );
    assert.equal(other.ok, false, "another user's mailbox is not found");
    count("update_mailbox other user");
  }
  // A mailbox id that is SQL is refused by the uuid type.
  assert.equal(
    await sqlstate(() =>
      asUser(owner, (tx) => tx`select public.update_mailbox(p_mailbox_id := ${payloads[0]})`)
    ),
    "22P02",
  );
  const [secret] = await sql`
    select s.decrypted_secret from auto_sync.mailbox_credentials c join vault.decrypted_secrets s on s.id = c.secret_id
     where c.mailbox_id = ${id}`;
  assert.notEqual(secret.decrypted_secret, "stolen");
  await assertNothingExecuted();
});

Deno.test("no signing secret in any response body of this file", () => {
  console.log(`SQL injection cases: ${JSON.stringify(counts)}`);
  assertNoSecretIn(collectedBodies, "SQL injection responses");
});

Deno.test({
  name: "clean up: remove the sentinel, this file's users, their mailboxes and Vault secrets",
  fn: async () => {
    try {
      await fixtures.cleanup();
      const left = await sql`select name from vault.secrets where name = any(${
        mailboxIds.map((id) => `mailbox:${id}`)
      })`;
      assert.deepEqual([...left], [], "every mailbox secret went with its mailbox");
    } finally {
      try {
        await sql.unsafe(`drop table if exists ${sentinel}`);
      } finally {
        await sql.end();
      }
    }
  },
});
