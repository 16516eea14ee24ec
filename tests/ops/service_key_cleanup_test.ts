/**
 * The clean-up of the service-role key stored in the database,
 * auto_sync.remove_stored_service_key() (supabase/migrations/20261129140010_remove_stored_service_key.sql),
 * on a database set up with a stored service-role key (supabase/tests/fixtures/stored_service_key_setup.psql): the
 * service-role key encrypted in public.auto_sync_config, the encryption key and the
 * service key in `ALTER DATABASE ... SET app.settings.*`, pgcrypto helpers, and one
 * pg_cron job per user calling import-emails with the key as a bearer token.
 *
 * Runs in the stack's shared `postgres` database: pg_cron only works in
 * `cron.database_name`. Hence:
 *   - every fake key is random per test, so the output can be searched for it;
 *   - the jobs that must survive carry a random suffix, the legacy ones random user
 *     ids, and every job gets a schedule that never fires (February 31st), with a
 *     URL under `.invalid`;
 *   - the stored key's objects have the names teams used (public.auto_sync_config, ...):
 *     nothing else in this project uses them; they get RLS and no grants to the API
 *     roles, so the access pgTAP tests stay green even if they ran meanwhile;
 *   - the database-level settings are the real names the clean-up clears; nothing in
 *     the stack reads app.settings.*. A test refuses to start if one is already set,
 *     and each test removes everything it made in `finally`, failure or not;
 *   - an advisory lock keeps these tests and supabase/tests/service_key_cleanup_test.sql
 *     from overlapping.
 * The clean-up is called with psql, as the migration calls it (and as an operator would
 * again, e.g. as a superuser).
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { connect, dbUrl } from "../support/local_stack.ts";

const repo = new URL("../../", import.meta.url).pathname;
const cleanup = "select auto_sync.remove_stored_service_key() ->> 'summary' as summary";
const fixture = `${repo}supabase/tests/fixtures/stored_service_key_setup.psql`;
const lockKey = "service_key_cleanup_test"; // the pgTAP file takes the same lock
const neverSchedule = "0 0 31 2 *";
const projectUrl = "https://stored-key-fixture.invalid";
const dbSettingNames = [
  "app.settings.encryption_key",
  "app.settings.service_role_key",
  "app.settings.supabase_url",
  "app.settings.jwt_secret",
  "app.settings.anon_key",
  "app.settings.webhook_secret",
];

function base64url(text: string): string {
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function randomToken(bytes = 24): string {
  return base64url(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes))));
}

/** A JWT-shaped fake key with the given role claim; the signature is random. */
function fakeKey(role: string): string {
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = base64url(
    JSON.stringify({
      iss: "supabase",
      ref: "storedkeyfixture",
      role,
      iat: 1700000000,
      exp: 2000000000,
    }),
  );
  return `${header}.${payload}.${randomToken(32)}`;
}

interface Scenario {
  tag: string;
  users: [string, string, string];
  legacyJobs: string[];
  keptJobs: string[];
  serviceKey: string;
  encryptionKey: string;
  anonKey: string;
  secretKey: string;
  jwtSecret: string;
  settingsRole: string;
  /** strings that must never show up in the clean-up's output */
  secrets: string[];
  /** cron.job_run_details rows the test wrote */
  historyRuns: number[];
}

function newScenario(): Scenario {
  const tag = crypto.randomUUID().slice(0, 8);
  const users = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()] as [
    string,
    string,
    string,
  ];
  const serviceKey = fakeKey("service_role");
  const encryptionKey = `enc-${randomToken()}`;
  const anonKey = fakeKey("anon");
  const secretKey = `sb_secret_${randomToken(24)}`;
  const jwtSecret = `jwt-secret-${randomToken()}`;
  return {
    tag,
    users,
    legacyJobs: [`auto-sync-${users[0]}`, `sync_emails_${users[1]}`, `auto-sync-${users[2]}`],
    keptJobs: [`vacuum-nightly-${tag}`, `send-digest-${tag}`, `health-ping-${tag}`],
    serviceKey,
    encryptionKey,
    anonKey,
    secretKey,
    jwtSecret,
    settingsRole: `stored_key_app_${tag}`,
    secrets: [
      serviceKey,
      serviceKey.split(".")[1],
      serviceKey.split(".")[2],
      encryptionKey,
      secretKey,
      jwtSecret,
    ],
    historyRuns: [],
  };
}

async function psql(args: string[]): Promise<{ code: number; output: string }> {
  const result = await new Deno.Command("psql", {
    args: [dbUrl, "-X", "-q", "-v", "ON_ERROR_STOP=1", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    output: decoder.decode(result.stdout) + decoder.decode(result.stderr),
  };
}

/** Runs the clean-up; `asRole` switches role first (SET ROLE), as a non-superuser would run it. */
function runCleanup(asRole?: string) {
  return psql([...(asRole ? ["-c", `set role "${asRole}"`] : []), "-c", cleanup]);
}

async function setUpStoredKey(s: Scenario, options: { ownerRole?: string } = {}) {
  const vars: Record<string, string> = {
    user1: s.users[0],
    user2: s.users[1],
    user3: s.users[2],
    suffix: `-${s.tag}`,
    legacy_schedule: neverSchedule,
    nightly_schedule: neverSchedule,
    project_url: projectUrl,
    service_role_key: s.serviceKey,
    encryption_key: s.encryptionKey,
    settings_role: s.settingsRole,
    ...(options.ownerRole ? { owner_role: options.ownerRole } : {}),
  };
  const { code, output } = await psql([
    ...Object.entries(vars).flatMap(([k, v]) => ["-v", `${k}=${v}`]),
    "-f",
    fixture,
  ]);
  assert.equal(code, 0, `fixture failed: ${output}`);
}

/** Settings of this database that the tests set, name → value. */
async function dbSettings(sql: postgres.Sql): Promise<Record<string, string>> {
  const rows = await sql`
    select split_part(c, '=', 1) as name, substr(c, strpos(c, '=') + 1) as value
      from pg_db_role_setting s, unnest(s.setconfig) c
     where s.setrole = 0 and s.setdatabase = (select oid from pg_database where datname = current_database())`;
  return Object.fromEntries(
    rows.filter((r) => dbSettingNames.includes(r.name)).map((r) => [r.name, r.value]),
  );
}

async function roleSettings(sql: postgres.Sql, role: string): Promise<string[]> {
  const rows = await sql`
    select s.setdatabase <> 0 as in_database, c
      from pg_db_role_setting s, unnest(s.setconfig) c
     where s.setrole = (select oid from pg_roles where rolname = ${role})
     order by 1, 2`;
  return rows.map((r) => `${r.in_database ? "in database: " : ""}${r.c.split("=")[0]}`);
}

async function jobNames(sql: postgres.Sql, names: string[]): Promise<string[]> {
  const rows =
    await sql`select jobname from cron.job where jobname = any(${names}) order by jobname`;
  return rows.map((r) => r.jobname);
}

async function storedKeyObjects(sql: postgres.Sql): Promise<string[]> {
  const rows = await sql`
    select 'relation public.' || c.relname as what from pg_class c
     where c.relname in ('auto_sync_config', 'auto_sync_config_overview') and c.relnamespace = 'public'::regnamespace
    union all
    select 'function public.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' from pg_proc p
     where p.proname in ('encrypt_secret', 'decrypt_secret', 'get_service_role_key')
       and p.pronamespace = 'public'::regnamespace
    order by 1`;
  return rows.map((r) => r.what);
}

async function dispatchJob(sql: postgres.Sql) {
  const [job] =
    await sql`select jobid, command, schedule, active from cron.job where jobname = 'auto-sync-dispatch'`;
  return job;
}

function assertNoSecret(output: string, s: Scenario) {
  for (const secret of s.secrets) {
    assert.ok(
      !output.includes(secret),
      `the output must not contain key material (${secret.slice(0, 6)}...)`,
    );
  }
  assert.doesNotMatch(output, /bearer/i, "the output must not repeat a job's command");
}

/**
 * Runs `body` with the stack's database prepared for one scenario, then removes
 * everything the scenario (or a failed clean-up) left, as the superuser.
 */
async function withScenario(
  body: (sql: postgres.Sql, s: Scenario) => Promise<void>,
  options: { extraRoles?: string[]; extraSchemas?: string[] } = {},
) {
  const sql = connect();
  const lock = await sql.reserve();
  const s = newScenario();
  try {
    await lock`select pg_advisory_lock(hashtext(${lockKey}))`;
    assert.deepEqual(
      await dbSettings(sql),
      {},
      "app.settings.* already set on the stack's database; not touching them",
    );
    assert.deepEqual(
      await storedKeyObjects(sql),
      [],
      "the stored key's objects already in public; not touching them",
    );
    const [{ db }] = await sql`select current_database() as db`;
    try {
      await sql.unsafe(`create role "${s.settingsRole}" nologin`);
      // Settings the fixture does not make: one that must stay (the platform's own),
      // the public anon key (stays), a secret key under another name (goes by value).
      await sql.unsafe(`alter database "${db}" set app.settings.jwt_secret = '${s.jwtSecret}'`);
      await sql.unsafe(`alter database "${db}" set app.settings.anon_key = '${s.anonKey}'`);
      await sql.unsafe(`alter database "${db}" set app.settings.webhook_secret = '${s.secretKey}'`);
      await body(sql, s);
    } finally {
      const jobs = [...s.legacyJobs, ...s.keptJobs];
      await sql`select cron.unschedule(jobid) from cron.job where jobname = any(${jobs})`;
      await sql`delete from cron.job_run_details where runid = any(${s.historyRuns})`;
      await sql.unsafe(`
        drop view if exists public.auto_sync_config_overview;
        drop table if exists public.auto_sync_config cascade;
        drop function if exists public.get_service_role_key(), public.decrypt_secret(bytea), public.encrypt_secret(text);`);
      for (const schema of options.extraSchemas ?? []) {
        await sql.unsafe(`drop schema if exists "${schema}" cascade`);
      }
      for (const name of Object.keys(await dbSettings(sql))) {
        await sql.unsafe(`alter database "${db}" reset "${name}"`);
      }
      for (const role of [s.settingsRole, ...(options.extraRoles ?? [])]) {
        const [exists] = await sql`select 1 from pg_roles where rolname = ${role}`;
        if (exists) await sql.unsafe(`drop owned by "${role}" cascade; drop role "${role}"`);
      }
    }
  } finally {
    await lock`select pg_advisory_unlock(hashtext(${lockKey}))`;
    lock.release();
    await sql.end();
  }
}

Deno.test("service-key clean-up as the superuser: removes the key, its helpers and the legacy jobs, keeps the rest", async (t) => {
  await withScenario(async (sql, s) => {
    const dispatchBefore = await dispatchJob(sql);
    assert.ok(dispatchBefore, "the stack has the auto-sync-dispatch job");
    await setUpStoredKey(s);

    await t.step(
      "the fixture stores the key: decryptable from the table, jobs scheduled, settings set",
      async () => {
        const [row] = await sql.begin(async (tx) => {
          await tx`select set_config('app.settings.encryption_key', ${s.encryptionKey}, true)`;
          return await tx`select public.get_service_role_key() as key`;
        });
        assert.equal(row.key, s.serviceKey);
        assert.deepEqual(
          await jobNames(sql, [...s.legacyJobs, ...s.keptJobs]),
          [...s.legacyJobs, ...s.keptJobs].sort(),
        );
        assert.deepEqual(Object.keys(await dbSettings(sql)).sort(), [...dbSettingNames].sort());
        assert.deepEqual(await roleSettings(sql, s.settingsRole), [
          "app.settings.service_role_key",
          "in database: app.settings.encryption_key",
        ]);
      },
    );

    // What pg_cron would have recorded: one run of each legacy job and of a job that
    // must stay, and a run of a legacy job unscheduled long ago by hand.
    const history = await sql`
      insert into cron.job_run_details (jobid, database, username, command, status, start_time, end_time)
      select j.jobid, j.database, j.username, j.command, 'succeeded', now() - interval '1 hour', now() - interval '1 hour'
        from cron.job j where j.jobname = any(${[...s.legacyJobs, s.keptJobs[0]]})
      union all
      select 2000000000 + (random() * 100000000)::bigint, current_database(), 'postgres',
             format('select net.http_post(url := %L, headers := jsonb_build_object(''Authorization'', %L))',
                    ${`${projectUrl}/functions/v1/import-emails`}::text, ${`Bearer ${s.serviceKey}`}::text),
             'succeeded', now() - interval '1 day', now() - interval '1 day'
      returning runid, jobid`;
    s.historyRuns.push(...history.map((row) => Number(row.runid)));
    const [{ jobid: keptJobId }] = await sql`select jobid from cron.job where jobname = ${
      s.keptJobs[0]
    }`;
    const keptRun = Number(history.find((row) => row.jobid === keptJobId)?.runid);
    const [{ max_runid: dispatchRunsUpTo }] = await sql`
      select max(runid) as max_runid from cron.job_run_details where jobid = ${dispatchBefore.jobid}`;
    const dispatchRuns = async () =>
      (await sql`
      select count(*)::int as n from cron.job_run_details where jobid = ${dispatchBefore.jobid} and runid <= ${
        dispatchRunsUpTo ?? 0
      }`)[0].n;
    const dispatchRunsBefore = await dispatchRuns();

    const first = await runCleanup();

    await t.step("the clean-up succeeds and reports by name, never with key material", () => {
      assert.equal(first.code, 0, first.output);
      for (const job of s.legacyJobs) {
        assert.match(first.output, new RegExp(`unscheduled pg_cron job "${job}"`));
      }
      for (const job of s.keptJobs) {
        assert.doesNotMatch(first.output, new RegExp(`unscheduled pg_cron job "${job}"`));
      }
      assert.match(first.output, /dropped table public\.auto_sync_config\b/);
      assert.match(first.output, /dropped function public\.get_service_role_key\(\)/);
      assert.match(first.output, /dropping view public\.auto_sync_config_overview along/);
      assert.match(first.output, /cleared setting app\.settings\.service_role_key/);
      assert.match(first.output, /cleared setting app\.settings\.encryption_key/);
      assert.match(
        first.output,
        /WARNING: {2}service-key clean-up: this database held the service-role key: rotate it/,
      );
      assertNoSecret(first.output, s);
    });

    await t.step("table, view and helpers are gone", async () => {
      assert.deepEqual(await storedKeyObjects(sql), []);
    });

    await t.step(
      "the three legacy jobs are gone; the unrelated jobs and auto-sync-dispatch are untouched",
      async () => {
        assert.deepEqual(await jobNames(sql, s.legacyJobs), []);
        assert.deepEqual(await jobNames(sql, s.keptJobs), [...s.keptJobs].sort());
        assert.deepEqual(await dispatchJob(sql), dispatchBefore);
      },
    );

    await t.step(
      "the legacy jobs' run history, which repeats their command, is deleted; other history stays",
      async () => {
        const left =
          await sql`select runid from cron.job_run_details where runid = any(${s.historyRuns}) order by runid`;
        assert.equal(s.historyRuns.length, 5);
        assert.deepEqual(
          left.map((row) => Number(row.runid)),
          [keptRun],
          "only the surviving job's run is left",
        );
        assert.match(first.output, /deleted 4 cron\.job_run_details row\(s\)/);
        assert.equal(
          await dispatchRuns(),
          dispatchRunsBefore,
          "auto-sync-dispatch's history untouched",
        );
      },
    );

    await t.step(
      "database-level key settings are reset; the platform's jwt_secret, the URL and the anon key stay",
      async () => {
        const settings = await dbSettings(sql);
        assert.deepEqual(Object.keys(settings).sort(), [
          "app.settings.anon_key",
          "app.settings.jwt_secret",
          "app.settings.supabase_url",
        ]);
        assert.equal(settings["app.settings.jwt_secret"], s.jwtSecret);
        assert.equal(settings["app.settings.supabase_url"], projectUrl);
        assert.match(
          first.output,
          /cleared setting app\.settings\.webhook_secret/,
          "an sb_secret_ value is cleared whatever its name",
        );
      },
    );

    await t.step(
      "per-role key settings are reset too (ALTER ROLE ... and ALTER ROLE ... IN DATABASE)",
      async () => {
        assert.deepEqual(await roleSettings(sql, s.settingsRole), []);
      },
    );

    await t.step("a new session no longer receives the keys", async () => {
      const { code, output } = await psql([
        "-At",
        "-c",
        "select coalesce(current_setting('app.settings.service_role_key', true), '<unset>') || '|' || " +
        "coalesce(current_setting('app.settings.encryption_key', true), '<unset>')",
      ]);
      assert.equal(code, 0, output);
      assert.equal(output.trim(), "<unset>|<unset>");
    });

    await t.step("a second run succeeds and removes nothing", async () => {
      const jobsBefore = await sql`select jobid, jobname, command from cron.job order by jobid`;
      const settingsBefore = await dbSettings(sql);
      const second = await runCleanup();
      assert.equal(second.code, 0, second.output);
      assert.match(second.output, /no stored service key found/);
      assert.doesNotMatch(second.output, /unscheduled|dropped|cleared|WARNING/);
      assert.deepEqual(
        await sql`select jobid, jobname, command from cron.job order by jobid`,
        jobsBefore,
      );
      assert.deepEqual(await dbSettings(sql), settingsBefore);
    });
  });
});

async function runDoctor(): Promise<{ code: number; output: string }> {
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${repo}ops/doctor.ts`, "--local-stack"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    output: decoder.decode(result.stdout) + decoder.decode(result.stderr),
  };
}

Deno.test("doctor reports a stored service key through the clean-up's own dry run, changing nothing", async () => {
  await withScenario(async (sql, s) => {
    await setUpStoredKey(s);
    const before = await storedKeyObjects(sql);
    const { code, output } = await runDoctor();
    assert.equal(code, 1, output);
    assert.match(
      output,
      /^FAIL\s+no stored service-role key\s+the clean-up would unschedule 3 pg_cron job\(s\), delete \d+ cron\.job_run_details row\(s\), drop 4 object\(s\), clear \d+ setting\(s\)/m,
    );
    assertNoSecret(output, s);
    assert.deepEqual(await storedKeyObjects(sql), before, "the dry run dropped nothing");
    assert.deepEqual(await jobNames(sql, s.legacyJobs), [...s.legacyJobs].sort());
    assert.ok(
      "app.settings.service_role_key" in await dbSettings(sql),
      "the dry run kept the settings",
    );
  });
});

Deno.test("service-key clean-up on a database that never stored the key: a no-op", async () => {
  const sql = connect();
  const lock = await sql.reserve();
  try {
    await lock`select pg_advisory_lock(hashtext(${lockKey}))`;
    const snapshot = async () => ({
      jobs:
        await sql`select jobid, jobname, schedule, command, active from cron.job order by jobid`,
      settings:
        await sql`select setdatabase, setrole, setconfig from pg_db_role_setting order by 1, 2`,
      relations:
        await sql`select count(*)::int as n from pg_class where relnamespace in ('public'::regnamespace, 'auto_sync'::regnamespace)`,
      functions:
        await sql`select count(*)::int as n from pg_proc where pronamespace in ('public'::regnamespace, 'auto_sync'::regnamespace)`,
    });
    const before = await snapshot();
    const { code, output } = await runCleanup();
    assert.equal(code, 0, output);
    assert.match(output, /no stored service key found/);
    assert.doesNotMatch(output, /unscheduled|dropped|cleared|WARNING|ERROR/);
    assert.deepEqual(await snapshot(), before);
  } finally {
    await lock`select pg_advisory_unlock(hashtext(${lockKey}))`;
    lock.release();
    await sql.end();
  }
});

Deno.test("service-key clean-up as a role that may not ALTER DATABASE: succeeds, and warns about the settings it leaves", async (t) => {
  // The hosted situation: migrations run as `postgres`, which owns what it created
  // (the table, the helpers, its pg_cron jobs) but is no superuser, so resetting a
  // custom setting is refused. This role owns the stored key's objects and jobs; the
  // settings were made by a superuser, as they had to be.
  const migrator = `stored_key_migrator_${crypto.randomUUID().slice(0, 8)}`;
  await withScenario(async (sql, s) => {
    await sql.unsafe(`
      create role "${migrator}" nologin nosuperuser;
      grant usage, create on schema public to "${migrator}";
      grant usage on schema extensions, cron to "${migrator}";
      grant usage on schema auto_sync to "${migrator}";
      grant execute on function auto_sync.remove_stored_service_key(boolean) to "${migrator}";`);
    const [{ super: isSuper, owner }] = await sql`
      select rolsuper as super, (select datdba from pg_database where datname = current_database()) = r.oid as owner
        from pg_roles r where rolname = ${migrator}`;
    assert.equal(isSuper, false);
    assert.equal(owner, false);
    await setUpStoredKey(s, { ownerRole: migrator });
    const [{ n }] = await sql`select count(*)::int as n from cron.job where username = ${migrator}`;
    assert.equal(n, 6, "the migrator owns the legacy jobs and the jobs that must survive");

    const run = await runCleanup(migrator);

    await t.step("the clean-up succeeds", () => {
      assert.equal(run.code, 0, run.output);
    });

    await t.step("it removed what the role owns: table, helpers, legacy jobs", async () => {
      assert.deepEqual(await storedKeyObjects(sql), []);
      assert.deepEqual(await jobNames(sql, s.legacyJobs), []);
      assert.deepEqual(await jobNames(sql, s.keptJobs), [...s.keptJobs].sort());
      for (const job of s.legacyJobs) {
        assert.match(run.output, new RegExp(`unscheduled pg_cron job "${job}"`));
      }
    });

    await t.step(
      "each setting it could not reset is a WARNING with the statement to have run, and no value",
      async () => {
        for (
          const name of [
            "app.settings.service_role_key",
            "app.settings.encryption_key",
            "app.settings.webhook_secret",
          ]
        ) {
          assert.match(
            run.output,
            new RegExp(
              `WARNING: {2}service-key clean-up: could not clear setting ${
                name.replaceAll(".", "\\.")
              } `,
            ),
          );
          assert.match(
            run.output,
            new RegExp(
              `ask support\\): alter database postgres reset "${name.replaceAll(".", "\\.")}";`,
            ),
          );
        }
        assert.match(
          run.output,
          new RegExp(
            `support\\): alter role ${s.settingsRole} reset "app\\.settings\\.service_role_key";`,
          ),
        );
        assert.match(
          run.output,
          new RegExp(
            `support\\): alter role ${s.settingsRole} in database postgres reset "app\\.settings\\.encryption_key";`,
          ),
        );
        assert.match(run.output, /0 setting\(s\) cleared, 5 setting\(s\) left for a superuser/);
        assertNoSecret(run.output, s);
        const settings = await dbSettings(sql);
        assert.equal(
          settings["app.settings.service_role_key"],
          s.serviceKey,
          "still set: the role could not reset it",
        );
      },
    );

    await t.step(
      "run again by a superuser (what support would do), the settings are cleared",
      async () => {
        const again = await runCleanup();
        assert.equal(again.code, 0, again.output);
        assert.match(
          again.output,
          /0 pg_cron job\(s\) unscheduled, 0 object\(s\) dropped, 5 setting\(s\) cleared/,
        );
        assertNoSecret(again.output, s);
        assert.deepEqual(Object.keys(await dbSettings(sql)).sort(), [
          "app.settings.anon_key",
          "app.settings.jwt_secret",
          "app.settings.supabase_url",
        ]);
        assert.deepEqual(await roleSettings(sql, s.settingsRole), []);
      },
    );
  }, { extraRoles: [migrator] });
});

Deno.test("service-key clean-up refuses, changing nothing, when CASCADE would drop more than the key's own objects", async () => {
  const schema = `stored_key_test_${crypto.randomUUID().slice(0, 8)}`;
  await withScenario(async (sql, s) => {
    await setUpStoredKey(s);
    // A team's table whose restrictive policy consults the stored key's table: CASCADE
    // would silently drop the policy, and with it a restriction on who reads what.
    await sql.unsafe(`
      create schema "${schema}";
      create table "${schema}".mailboxes (id int primary key);
      alter table "${schema}".mailboxes enable row level security;
      create policy "only once configured" on "${schema}".mailboxes as restrictive for select
        using (exists (select 1 from public.auto_sync_config));`);
    const jobsBefore = await sql`select jobid, jobname, command from cron.job order by jobid`;
    const settingsBefore = await dbSettings(sql);

    const run = await runCleanup();
    assert.notEqual(run.code, 0, "the clean-up fails");
    assert.match(
      run.output,
      /ERROR: {2}service-key clean-up: cannot drop public\.auto_sync_config.* without also dropping: policy only once configured on table/,
    );
    assert.match(run.output, /Nothing was changed/);
    assert.doesNotMatch(
      run.output,
      /unscheduled pg_cron job/,
      "it reports no removal before the check",
    );
    assertNoSecret(run.output, s);
    assert.equal((await storedKeyObjects(sql)).length, 5, "table, view and helpers still there");
    assert.deepEqual(
      await sql`select jobid, jobname, command from cron.job order by jobid`,
      jobsBefore,
    );
    assert.deepEqual(await dbSettings(sql), settingsBefore);
    const [policy] = await sql`select 1 from pg_policies where schemaname = ${schema}`;
    assert.ok(policy, "the policy is still there");
  }, { extraSchemas: [schema] });
});

Deno.test("service-key clean-up keeps the encryption key when other data may still need it; a foreign key loses only its constraint", async () => {
  const schema = `stored_key_test_${crypto.randomUUID().slice(0, 8)}`;
  await withScenario(async (sql, s) => {
    await setUpStoredKey(s);
    // The same helpers also encrypted the team's IMAP passwords.
    await sql.unsafe(`
      create schema "${schema}";
      create table "${schema}".accounts (
        id int primary key,
        config_id bigint references public.auto_sync_config (id),
        password_encrypted bytea);
      insert into "${schema}".accounts values (1, null, null);
      create function "${schema}".imap_password(p_id int) returns text language sql
        as $$ select public.decrypt_secret(a.password_encrypted) from "${schema}".accounts a where a.id = p_id $$;`);

    const run = await runCleanup();
    assert.equal(run.code, 0, run.output);
    assertNoSecret(run.output, s);
    assert.match(
      run.output,
      /WARNING: {2}service-key clean-up: kept the encryption-key settings and public\.decrypt_secret\(bytea\), public\.encrypt_secret\(text\) because other objects may still need them: /,
    );
    assert.match(run.output, new RegExp(`column ${schema}\\.accounts\\.password_encrypted`));
    assert.match(run.output, new RegExp(`function ${schema}\\.imap_password\\(integer\\)`));
    assert.match(
      run.output,
      new RegExp(`dropping constraint accounts_config_id_fkey on table ${schema}\\.accounts along`),
    );

    assert.deepEqual(await storedKeyObjects(sql), [
      "function public.decrypt_secret(p_encrypted bytea)",
      "function public.encrypt_secret(p_secret text)",
    ]);
    assert.deepEqual(await jobNames(sql, s.legacyJobs), []);
    const settings = await dbSettings(sql);
    assert.equal(settings["app.settings.encryption_key"], s.encryptionKey, "encryption key kept");
    assert.equal(
      settings["app.settings.service_role_key"],
      undefined,
      "service key cleared all the same",
    );
    const [account] = await sql.unsafe(`select count(*)::int as n from "${schema}".accounts`);
    assert.equal(account.n, 1, "the referencing table and its rows stay");
    const fks =
      await sql`select 1 from pg_constraint where conrelid = ${`${schema}.accounts`}::regclass and contype = 'f'`;
    assert.equal(fks.length, 0);
  }, { extraSchemas: [schema] });
});
