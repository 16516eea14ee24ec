/**
 * Gateways with the limits a test gives them, over this repository's functions and the
 * stack's database, and what the import tests read back: signed runs sent to a gateway,
 * runs waited for, mail counted per mailbox (import_limits_test.ts).
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { type GatewayProcess, stackGateway } from "./gateway_process.ts";
import { readFunctionsEnv, waitFor } from "./local_stack.ts";
import { claimsFor, createDispatchedRun, send, signInDatabase } from "./signed_requests.ts";

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A gateway over this repository's functions, with the given limits and function secrets. */
export async function limitedGateway(
  flags: string[],
  secrets: Record<string, string>,
): Promise<GatewayProcess> {
  const dir = Deno.makeTempDirSync({ prefix: "limits-" });
  const env = { ...readFunctionsEnv(), ...secrets };
  Deno.writeTextFileSync(
    `${dir}/functions.env`,
    Object.entries(env).map(([name, value]) => `${name}=${JSON.stringify(value)}`).join("\n"),
    { mode: 0o600 },
  );
  return await stackGateway(flags, { envFile: `${dir}/functions.env` });
}

/** A scheduled run for the user, signed by the database, sent to the gateway; its run id. */
export async function sendSignedRun(
  sql: postgres.Sql,
  gateway: GatewayProcess,
  userId: string,
): Promise<string> {
  const runId = await createDispatchedRun(sql, userId);
  const request = await signInDatabase(sql, claimsFor(userId, runId));
  const response = await send(request, { url: `${gateway.functionsUrl}/cron-auto-sync` });
  const text = await response.text();
  assert.equal(response.status, 202, text);
  return runId;
}

export async function runsFinished(sql: postgres.Sql, runIds: string[]) {
  return await waitFor(async () => {
    const rows = await sql`
      select id, status, error, details from auto_sync.runs where id = any(${runIds}::uuid[])`;
    return rows.every((row) => !["dispatched", "accepted", "running"].includes(row.status))
      ? rows
      : undefined;
  }, { timeoutMs: 60_000 });
}

export async function mailCounts(sql: postgres.Sql, mailboxIds: string[]) {
  return await sql`
    select m.id, count(e.*)::int as emails, count(distinct (e.uid_validity, e.uid))::int as uids,
           count(distinct e.message_id)::int as message_ids
      from public.mailboxes m left join public.emails e on e.mailbox_id = m.id
     where m.id = any(${mailboxIds}::uuid[])
     group by m.id`;
}

// Through the stack's Dovecot over loopback: the functions may reach private hosts here.
export const FUNCTION_SECRETS = { IMAP_ALLOW_PRIVATE_HOSTS: "true" };
