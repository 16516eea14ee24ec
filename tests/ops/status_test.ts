/**
 * The status command against the local stack: a user's schedule, their recent runs
 * and the per-hour outcome chart reflect what is in the tables.
 */
import assert from "node:assert/strict";
import { connect, createUser } from "../support/local_stack.ts";

const repo = new URL("../../", import.meta.url).pathname;
const sql = connect();

Deno.test("status shows the schedule, the recent runs and outcomes per hour", async () => {
  const userId = await createUser(sql, "status");
  try {
    await sql.begin(async (tx) => {
      await tx`select auto_sync.enable(${userId}, '45 minutes')`;
      await tx`update auto_sync.schedules set next_run_at = now() + interval '40 minutes' where user_id = ${userId}`;
      await tx`
        insert into auto_sync.runs (user_id, trigger, status, created_at, finished_at, error)
        select ${userId}, 'schedule', s, now() - interval '2 hours', now() - interval '2 hours' + interval '1 second',
               case when s = 'failed' then E'Login failed for "someone" \\u001b]0;owned\\u0007\\u001b[2J' end
          from unnest(array['succeeded', 'succeeded', 'failed']) as s`;
    });
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-env",
        `${repo}ops/status.ts`,
        "--local-stack",
        "--user",
        userId,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout);
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.match(text, /Schedules: 1 \(1 enabled, 0 due now\)/);
    assert.match(text, new RegExp(`${userId.slice(0, 8)}\\s+00:45:00\\s+yes\\s+in 40 min`));
    assert.equal(text.match(/schedule\s+succeeded/g)?.length, 2);
    assert.match(text, /schedule\s+failed\s+.*Login failed/);
    // A stored error's terminal escapes are not replayed by the status command.
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    const hour = new Date(Date.now() - 2 * 3600_000).toISOString().slice(11, 13);
    assert.match(text, new RegExp(`^  ${hour}:00 █+x+\\s+3 \\(1 not ok\\)$`, "m"));
  } finally {
    await sql`delete from auth.users where id = ${userId}`;
  }
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
