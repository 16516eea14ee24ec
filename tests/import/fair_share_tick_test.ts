/**
 * Fair share through the real path: pg_cron ticks, dispatch() signs, pg_net sends,
 * cron-auto-sync verifies and imports, in one function instance at the platform's
 * default limits (a gateway of its own, local-stack/isolate_limits.ts). Two users point
 * their mailboxes at a lying server (tests/support/hostile_imap_server.ts) and are
 * dispatched first; an honest user with mail on the stack's Dovecot is dispatched into
 * the same instance while their runs hold it. The honest user's mail is complete
 * within its first run, and each hostile pair ends as the rules say
 * (functions-shared/import_emails/instance_admission.ts, isolate_budget.ts; the
 * follow-up and failure rules of auto_sync.record_outcomes and continue_run).
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { DEFAULT_LIMITS } from "../../functions-shared/import_emails/import_run.ts";
import { MAX_EMPTY_CHUNKS } from "../../functions-shared/import_emails/instance_admission.ts";
import { withFastDispatchTick } from "../support/dispatch_tick.ts";
import {
  type FolderCopy,
  type Script,
  startHostileServer,
} from "../support/hostile_imap_server.ts";
import { addMailbox, appendMessages, createImapUser, message } from "../support/imap.ts";
import { FUNCTION_SECRETS, limitedGateway, sleep } from "../support/limited_gateway.ts";
import { connect, createUser, waitFor } from "../support/local_stack.ts";

const sql = connect();
const HONEST_MESSAGES = 30;
const encoder = new TextEncoder();

/** A folder of `count` small messages under UIDs `step` apart (the server announces them all). */
function announcedFolder(count: number, step = 1): FolderCopy {
  const source = encoder.encode(message({ subject: "announced" }));
  return {
    uidValidity: 4242,
    messages: Array.from({ length: count }, (_, i) => ({ uid: 1 + i * step, source })),
  };
}

interface HostileCase {
  folder: () => FolderCopy;
  script: Script;
  /** The run's error when the run fails outright (else: it asked and got nothing). */
  failure?: RegExp;
}

const cases: Record<string, HostileCase> = {
  "an empty FETCH for 5,000 announced UIDs": {
    folder: () => announcedFolder(5_000),
    script: { fetch: (_uids, tag, io) => io.write(`${tag} OK done\r\n`) },
  },
  // 100,000 listed UIDs cost the instance ~0.13 s of CPU each (charged to its budget,
  // LISTED_UID_BYTES); at 300,000 two such runs pass the 1 s soft limit and the runtime
  // retires the instance (the honest run would land in a fresh one: no sharing to test).
  "huge announced UID ranges (100,000 UIDs up to 1,000,000,000), no FETCH answered": {
    folder: () => announcedFolder(100_000, 10_000),
    script: { fetch: (_uids, tag, io) => io.write(`${tag} OK done\r\n`) },
  },
  "a drip: one small message every 4 s": {
    folder: () => announcedFolder(200),
    failure: /did not answer a FETCH within 15 s/,
    script: {
      async fetch(uids, tag, io) {
        for (const [i, uid] of uids.entries()) {
          await sleep(4_000);
          await io.write(io.honestRow(uid, i + 1));
        }
        await io.write(`${tag} OK done\r\n`);
      },
    },
  },
};

async function userRuns(sql: postgres.Sql, userId: string) {
  return await sql`
    select id, status, error, details, dispatched_at, started_at, finished_at
      from auto_sync.runs where user_id = ${userId} order by created_at`;
}

for (const [name, hostile] of Object.entries(cases)) {
  Deno.test(`two users behind ${name} and an honest user in one instance: the honest mail is complete in its first run`, async () => {
    const gateway = await limitedGateway([], FUNCTION_SECRETS); // the platform's limits
    const server = startHostileServer(hostile.folder(), hostile.script);
    const [{ endpoint_url: endpoint }] = await sql`select endpoint_url from auto_sync.settings`;
    const users: string[] = [];
    try {
      await sql`update auto_sync.settings set endpoint_url = ${`${gateway.functionsUrl}/cron-auto-sync`}`;
      const hostileUsers: string[] = [];
      for (let i = 0; i < 2; i++) {
        const userId = await createUser(sql, "fair-hostile");
        users.push(userId);
        hostileUsers.push(userId);
        const imapUser = await createImapUser();
        await addMailbox(sql, userId, imapUser, { tls: "plain", port: server.port });
      }
      const honestId = await createUser(sql, "fair-honest");
      users.push(honestId);
      const honestImap = await createImapUser();
      await appendMessages(
        honestImap,
        "INBOX",
        Array.from({ length: HONEST_MESSAGES }, () => message()),
      );
      const honestMailbox = await addMailbox(sql, honestId, honestImap);

      const { honest, hostileRuns } = await withFastDispatchTick(sql, 1, async () => {
        for (const userId of hostileUsers) await sql`select auto_sync.enable(${userId})`;
        // Both hostile runs hold the instance before the honest user is dispatched.
        await waitFor(async () => {
          const [row] = await sql`
            select count(*)::int as running from auto_sync.runs
             where user_id = any(${hostileUsers}::uuid[]) and started_at is not null`;
          return row.running >= 2 ? true : undefined;
        }, { timeoutMs: 30_000, intervalMs: 100 });
        await sql`select auto_sync.enable(${honestId})`;
        const honest = await waitFor(async () => {
          const runs = await userRuns(sql, honestId);
          return runs[0]?.finished_at ? runs : undefined;
        }, { timeoutMs: 60_000, intervalMs: 200 });
        // Long enough for any continuation at once, or a drip's FETCH cap, to show.
        await sleep(20_000);
        const hostileRuns = await Promise.all(
          hostileUsers.map((userId) =>
            waitFor(async () => {
              const runs = await userRuns(sql, userId);
              return runs.every((run) => run.finished_at) ? runs : undefined;
            }, { timeoutMs: 60_000, intervalMs: 500 })
          ),
        );
        return { honest, hostileRuns };
      });

      const [first] = honest;
      assert.equal(honest.length, 1, JSON.stringify(honest));
      assert.equal(first.status, "succeeded", JSON.stringify(first));
      assert.equal(first.details.inserted, HONEST_MESSAGES);
      // Not held back: a slot at once (IMPORT_MAX_CONCURRENT_RUNS 4), well within one
      // hostile FETCH's 15 s cap.
      const honestMs = first.finished_at - first.dispatched_at;
      assert.ok(honestMs < 10_000, `the honest run took ${honestMs} ms`);
      const [{ emails }] = await sql`
        select count(distinct uid)::int as emails from public.emails where mailbox_id = ${honestMailbox}`;
      assert.equal(emails, HONEST_MESSAGES, "every honest message, once");
      const retired = gateway.output().split("\n").filter((line) =>
        /instance (retired|terminated)/.test(line)
      );
      assert.deepEqual(retired, [], "every run in the one instance");

      const schedules = await sql`
        select s.user_id, s.consecutive_failures, s.last_error,
               extract(epoch from s.next_run_at - r.finished_at) as due_in
          from auto_sync.schedules s join auto_sync.runs r on r.id = s.last_run_id
         where s.user_id = any(${hostileUsers}::uuid[])`;
      for (const runs of hostileRuns) {
        // Asked, got nothing: a failure (backoff), not progress, and not continued.
        assert.equal(runs.length, 1, JSON.stringify(runs.map((run) => run.status)));
        assert.equal(runs[0].details.fetched ?? 0, 0);
        assert.ok(runs[0].details.requested > 0);
        // Asked five chunks in a row for nothing, then no more (each FETCH costs CPU).
        assert.ok(
          runs[0].details.requested <= MAX_EMPTY_CHUNKS * DEFAULT_LIMITS.chunkSize,
          `asked for ${runs[0].details.requested} UIDs`,
        );
        // The drip's FETCH ends at its 15 s cap, the chunk it was sending unstored.
        if (hostile.failure) assert.match(runs[0].error ?? "", hostile.failure);
      }
      for (const schedule of schedules) {
        assert.equal(schedule.consecutive_failures, 1, JSON.stringify(schedule));
        assert.match(schedule.last_error, hostile.failure ?? /sent none of the/);
        // The failure backoff (a minute, then doubling), not the follow-up's "at once".
        assert.ok(Number(schedule.due_in) >= 55, `backed off: due ${schedule.due_in} s after`);
      }
      console.log(
        `honest: ${honestMs} ms dispatched to finished; hostile runs: ${
          hostileRuns.map((runs) =>
            runs.map((run) => `${run.status}(${run.details.requested}/${run.details.fetched})`)
              .join(" ")
          ).join(" | ")
        }`,
      );
    } finally {
      for (const userId of users) await sql`select auto_sync.disable(${userId})`;
      await sql`update auto_sync.settings set endpoint_url = ${endpoint}`;
      server.close();
      await gateway.stop();
      for (const userId of users) await sql`delete from auth.users where id = ${userId}`;
    }
  });
}

Deno.test({ name: "close the database connection", fn: () => sql.end() });
