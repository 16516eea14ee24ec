/**
 * The demo (scripts/demo): the whole signed path on the local stack, step by step.
 * A demo user connects a mailbox and turns auto-sync on; the real pg_cron tick
 * (every 2 s during the demo: pg_cron 1.6 takes seconds schedules) dispatches a signed
 * request, pg_net's real worker delivers it, cron-auto-sync verifies it and
 * hands off to import-emails, which imports the mail from the real IMAP server
 * (Dovecot). The captured request is replayed and refused. Two new messages arrive
 * and the user's "sync now" imports exactly those two. Then a second user connects a mailbox
 * with OAuth: oauth-connect, sign-in and consent at the local oidc-provider (a browser's
 * steps), oauth-callback, finish; "sync now" imports it, signing in to IMAP with an access
 * token from the stored refresh token. No token or secret is printed.
 */
import postgres from "postgres";
import { dbUrl, functionsUrl, imapsPort, stateDir } from "./urls.ts";
import { mintUserToken, postAsUser, waitFor } from "../tests/support/local_stack.ts";
import { send } from "../tests/support/signed_requests.ts";
import { capturedRequest, startCapture, stopCapture } from "../tests/support/sent_requests.ts";
import { withFastDispatchTick } from "../tests/support/dispatch_tick.ts";
import { addMailbox, appendMessages, createImapUser, message } from "../tests/support/imap.ts";
import { signInAndConsent } from "../tests/support/oauth.ts";
import { returnUrl } from "./oauth/provision.ts";

const DEMO_USER = "00000000-0000-4000-8000-00000000de70";
const DEMO_OAUTH_USER = "00000000-0000-4000-8000-00000000de71";
const sql = postgres(dbUrl, { max: 2, onnotice: () => {} });
const bold = (text: string) => `\x1b[1m${text}\x1b[0m`;
const dim = (text: string) => `\x1b[2m${text}\x1b[0m`;
const step = (n: number, title: string) => console.log(`\n${bold(`${n}. ${title}`)}`);
const show = (label: string, value: unknown) =>
  console.log(
    `   ${label.padEnd(20)} ${typeof value === "string" ? value : JSON.stringify(value)}`,
  );
const encoder = new TextEncoder();
const interactive = Deno.stdout.isTerminal();

async function showEmails(runId: string, userId = DEMO_USER) {
  const [run] = await sql`select details from auto_sync.runs where id = ${runId}`;
  show("imported", `${run.details.inserted} new message(s), ${run.details.fetched} fetched`);
  const emails = await sql`
    select e.uid, e.subject, e.from_address ->> 'address' as sender
      from public.emails e join public.mailboxes m on m.id = e.mailbox_id
     where m.user_id = ${userId} order by e.uid`;
  for (const email of emails) {
    show(`  uid ${email.uid}`, `${email.subject}  (from ${email.sender})`);
  }
}

step(1, "A signed-in user connects a mailbox and turns on auto-sync (as role authenticated)");
await sql`insert into auth.users (id, email) values (${DEMO_USER}, 'auto-sync-demo@example.com') on conflict (id) do nothing`;
await sql`delete from public.mailboxes where user_id = ${DEMO_USER}`; // a fresh mailbox each demo
const imapUser = await createImapUser();
await appendMessages(imapUser, "INBOX", [
  message({ subject: "Welcome to your new mailbox" }),
  message({ subject: "Your invoice for November" }),
  message({ subject: "Team lunch on Friday?" }),
]);
await addMailbox(sql, DEMO_USER, imapUser);
show(
  "mailbox",
  `imaps://localhost:${imapsPort} user ${imapUser.username} (password stored in Vault, 3 messages)`,
);
const [schedule] = await sql.begin(async (tx) => {
  await tx`select auto_sync.disable(${DEMO_USER})`; // re-enabling makes it due at once
  await tx`set local role authenticated`;
  await tx`select set_config('request.jwt.claims', ${
    JSON.stringify({ sub: DEMO_USER, role: "authenticated" })
  }, true)`;
  return await tx`select * from public.enable_auto_sync('30 minutes')`;
});
show("user", `${DEMO_USER} (auto-sync-demo@example.com)`);
show(
  "schedule",
  `every ${schedule.every}, next run ${schedule.next_run_at.toISOString()} (due now)`,
);

step(2, "The one pg_cron job (its command holds no secret)");
const [job] =
  await sql`select jobname, schedule, command from cron.job where jobname = 'auto-sync-dispatch'`;
show("cron.job", `${job.jobname}  '${job.schedule}'  ${job.command}`);
const keys = await sql`select name from vault.secrets where name like 'auto_sync_signing_key:%'`;
for (const key of keys) {
  show("signing key", `Vault secret "${key.name}" (value never leaves the database)`);
}

await startCapture(sql); // copies what dispatch() queues, inside its transaction
const started = Date.now();
const run = await withFastDispatchTick(sql, 2, () =>
  waitFor(async () => {
    const [row] = await sql`
    select * from auto_sync.runs
     where user_id = ${DEMO_USER} and trigger = 'schedule' and finished_at is not null
       and created_at >= ${new Date(started - 1000)}
     order by created_at desc limit 1`;
    return row;
  }, {
    timeoutMs: 90_000,
    intervalMs: 1000,
    onWait: (elapsed) => {
      const seconds = Math.round(elapsed / 1000);
      if (interactive) {
        Deno.stdout.writeSync(
          encoder.encode(`\r   waiting for the next pg_cron tick... ${seconds} s `),
        );
      } else if (seconds % 10 === 0) {
        console.log(`   waiting for the next pg_cron tick... ${seconds} s`);
      }
    },
  }));
console.log(
  `${interactive ? "\r" : ""}   pg_cron fired after ${Math.round((Date.now() - started) / 1000)} s${
    " ".repeat(20)
  }`,
);

step(3, "dispatch() signed a request and queued it in pg_net; the worker sent it");
const captured = await capturedRequest(sql, run.net_request_id);
await stopCapture(sql);
if (captured) {
  show("POST", captured.url);
  show("webhook-id", captured.id);
  show(
    "webhook-timestamp",
    `${captured.timestamp} (${new Date(Number(captured.timestamp) * 1000).toISOString()})`,
  );
  show(
    "webhook-signature",
    `${captured.signature.slice(0, 12)}... (HMAC only; the key stays in Vault)`,
  );
  show("body", new TextDecoder().decode(captured.body));
}

step(
  4,
  "cron-auto-sync verified it (timestamp, HMAC, claims, single use) and handed off in-process",
);
const logLines = Deno.readTextFileSync(`${stateDir}/gateway.log`).split("\n").filter((line) =>
  line.includes(run.id)
);
for (const line of logLines) console.log(`   ${dim(line)}`);
const [response] =
  await sql`select status_code, content from net._http_response where id = ${run.net_request_id}`;
show("function answered", `${response?.status_code} ${response?.content}`);

step(5, "The run row (the truth; cron history only knows the request was queued) and the mail");
for (const field of ["id", "trigger", "status", "dispatched_at", "accepted_at", "finished_at"]) {
  const value = run[field];
  show(field, value instanceof Date ? value.toISOString() : String(value));
}
await showEmails(run.id);

step(6, "Replaying the captured request (what an eavesdropper could try)");
if (captured) {
  const replay = await send(captured);
  show(
    "replay answered",
    `${replay.status} ${await replay.text()}  -> refused: the id was already used`,
  );
}

step(7, 'Two new messages arrive; the user presses "sync now" (import-emails, user JWT)');
await appendMessages(imapUser, "INBOX", [
  message({ subject: "Re: Team lunch on Friday?" }),
  message({ subject: "Flight confirmation" }),
]);
const token = await mintUserToken(DEMO_USER);
let answer = await fetch(`${functionsUrl}/import-emails`, {
  method: "POST",
  headers: { authorization: `Bearer ${token}` },
});
if (answer.status === 429) {
  const wait = Number(answer.headers.get("retry-after"));
  show("sync now answered", `429: at most one a minute; retrying in ${wait} s`);
  await answer.body?.cancel();
  await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  answer = await fetch(`${functionsUrl}/import-emails`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
  });
}
const { run_id: manualRunId } = await answer.json();
show("sync now answered", `${answer.status} run ${manualRunId}`);
const manual = await waitFor(async () => {
  const [row] =
    await sql`select status from auto_sync.runs where id = ${manualRunId} and finished_at is not null`;
  return row;
}, { timeoutMs: 30_000 });
show("status", manual.status);
await showEmails(manualRunId);

/** A JSON POST to a function as the given user. */
step(8, "Another user connects a mailbox with OAuth: oauth-connect gives the authorization URL");
await sql`insert into auth.users (id, email) values (${DEMO_OAUTH_USER}, 'oauth-demo@example.com') on conflict (id) do nothing`;
await sql`delete from public.mailboxes where user_id = ${DEMO_OAUTH_USER}`;
const oauthImapUser = await createImapUser();
await appendMessages(oauthImapUser, "INBOX", [
  message({ subject: "Signed in with OAuth, no password stored" }),
  message({ subject: "Your refresh token lives in Vault" }),
]);
const oauthToken = await mintUserToken(DEMO_OAUTH_USER);
const started8 = await postAsUser("oauth-connect", oauthToken, {
  provider: "generic",
  return_to: returnUrl,
});
if (started8.status !== 200) throw new Error(`oauth-connect answered ${started8.status}`);
const authorizationUrl = new URL(started8.body.authorization_url);
show(
  "oauth-connect",
  `${started8.status} -> ${authorizationUrl.origin}${authorizationUrl.pathname}`,
);
show(
  "request",
  `PKCE ${authorizationUrl.searchParams.get("code_challenge_method")}, scope "${
    authorizationUrl.searchParams.get("scope")
  }", state stored hashed for 10 min`,
);

step(9, "The user signs in and consents at the provider (the local oidc-provider)");
const callback = await signInAndConsent(authorizationUrl, oauthImapUser);
show("signed in as", `${oauthImapUser.username}; consent given`);
show("provider redirects", `${callback.origin}${callback.pathname}?code=...&state=...`);

step(10, "oauth-callback redeems the code; finish makes the mailbox (same user's token)");
const arrival = await fetch(callback, { redirect: "manual" });
await arrival.body?.cancel();
const backTo = new URL(arrival.headers.get("location") ?? "about:blank");
const ticket = backTo.searchParams.get("oauth_ticket");
show("oauth-callback", `${arrival.status} -> ${backTo.origin}${backTo.pathname}?oauth_ticket=...`);
if (!ticket) throw new Error("The callback gave no ticket");
const finished = await postAsUser("oauth-connect/finish", oauthToken, { ticket });
if (finished.status !== 200) throw new Error(`finish answered ${finished.status}`);
const [oauthBox] = await sql`
  select id, username, host, port, auth_kind, oauth_provider from public.mailboxes
   where id = ${finished.body.mailbox_id}`;
show("finish", `${finished.status} mailbox ${oauthBox.id}`);
show(
  "mailbox",
  `imaps://${oauthBox.host}:${oauthBox.port} user ${oauthBox.username}, ${oauthBox.auth_kind} (${oauthBox.oauth_provider}); refresh token in Vault only`,
);

step(11, '"sync now" imports it: refresh token -> access token -> IMAP XOAUTH2 / OAUTHBEARER');
const oauthSync = await postAsUser("import-emails", oauthToken);
show("sync now answered", `${oauthSync.status} run ${oauthSync.body.run_id}`);
const oauthRun = await waitFor(async () => {
  const [row] = await sql`
    select status from auto_sync.runs where id = ${oauthSync.body.run_id} and finished_at is not null`;
  return row;
}, { timeoutMs: 30_000 });
show("status", oauthRun.status);
await showEmails(oauthSync.body.run_id, DEMO_OAUTH_USER);

console.log(
  `\n${bold("Done.")} The stack keeps running: scripts/stack status | scripts/stack stop`,
);
await sql.end();
