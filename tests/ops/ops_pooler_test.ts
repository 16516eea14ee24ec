/**
 * The ops tools through a transaction-mode pooler: Supavisor, which answers on a
 * self-hosted install's port 5432 (user `postgres.<POOLER_TENANT_ID>`) and on hosted's
 * 6543, keeps no named prepared statement between transactions. The stand-in
 * (support/transaction_pooler.ts) cuts a connection that names one; the tools send
 * unnamed statements only (ops/database.ts), so they work through it.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { dbPort, functionsUrl, testPorts } from "../../local-stack/urls.ts";
import { startTransactionPooler } from "../support/transaction_pooler.ts";

const repo = new URL("../../", import.meta.url).pathname;

Deno.test("the stand-in refuses a client that prepares named statements (so it can catch a tool that does)", async () => {
  const pooler = startTransactionPooler(testPorts.transactionPooler, {
    hostname: "127.0.0.1",
    port: dbPort,
  });
  const preparing = postgres(pooler.url, { max: 1, prepare: true, onnotice: () => {} });
  // Its reconnect loop's own errors are expected here.
  const ignore = (event: PromiseRejectionEvent) => event.preventDefault();
  globalThis.addEventListener("unhandledrejection", ignore);
  try {
    // postgres.js reconnects and retries when its connection is cut: it never gets an answer.
    const outcome = await Promise.race([
      preparing`select ${1}::int as one`.then(() => "answered", () => "refused"),
      new Promise((resolve) => setTimeout(() => resolve("no answer"), 2_000)),
    ]);
    assert.notEqual(outcome, "answered");
    assert.ok(pooler.parses.named >= 1, JSON.stringify(pooler.parses));
  } finally {
    await preparing.end({ timeout: 0 }).catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 200));
    await pooler.close();
    globalThis.removeEventListener("unhandledrejection", ignore);
  }
});

Deno.test("status and doctor's database checks work through a transaction-mode pooler URL", async () => {
  const pooler = startTransactionPooler(testPorts.transactionPooler, {
    hostname: "127.0.0.1",
    port: dbPort,
  });
  try {
    const status = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-env", `${repo}ops/status.ts`, "--db-url", pooler.url],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(status.stdout);
    assert.equal(status.code, 0, new TextDecoder().decode(status.stderr));
    assert.match(text, /Schedules: \d+/);
    assert.ok(pooler.parses.unnamed > 0, "the tool's queries went through the pooler");
    assert.equal(pooler.parses.named, 0);

    const doctor = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-env",
        "--allow-read",
        `${repo}ops/doctor.ts`,
        "--db-url",
        pooler.url,
        "--functions-url",
        functionsUrl,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const report = new TextDecoder().decode(doctor.stdout) +
      new TextDecoder().decode(doctor.stderr);
    assert.match(report, /database reachable/);
    assert.doesNotMatch(report, /prepared statement|Connection terminated|ECONNRESET/i, report);
    assert.equal(pooler.parses.named, 0, report);
  } finally {
    await pooler.close();
  }
});
