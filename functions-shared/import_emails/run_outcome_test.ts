import assert from "node:assert/strict";
import {
  mailboxDetails,
  type MailboxOutcome,
  notStartedOutcome,
  type RunOutcome,
  runOutcome,
} from "./run_outcome.ts";

const PAUSE = "Paused after 3 failed logins: update the password or token to resume";
const REFUSED = 'Cannot connect to the mail server "imap.example.test:993"';
const LOGIN = 'Login failed for "alice@example.test" at imap.example.test';
const BUDGET = "Budget reached; the next run continues";
const STOPPED = "Stopped early: the function instance is shutting down; the next run continues";
const SHUT_DOWN =
  "The function instance shut down before anything was imported; the next run retries";

const done = (id = "a"): MailboxOutcome => ({ mailboxId: id, hasMore: false });
const more = (id = "a"): MailboxOutcome => ({ mailboxId: id, hasMore: true });
const busy = (id = "b"): MailboxOutcome => ({ mailboxId: id, busy: true });
const paused = (id = "p"): MailboxOutcome => ({ mailboxId: id, paused: true, error: PAUSE });
const failed = (error: string, id = "f"): MailboxOutcome => ({ mailboxId: id, error });
const RECONNECT = "Reconnect needed: microsoft no longer accepts this mailbox's connection";
const reconnect = (id = "r"): MailboxOutcome => ({
  mailboxId: id,
  reconnectNeeded: true,
  error: RECONNECT,
});
const notStarted = (id = "n"): MailboxOutcome => ({
  mailboxId: id,
  hasMore: true,
  notStarted: true,
});

// [what happened, mailboxes, messages saved, instance shutting down, the run's outcome]
const TABLE: Array<[string, MailboxOutcome[], number, boolean, RunOutcome]> = [
  ["no mailbox", [], 0, false, {
    status: "skipped",
    error: "no mailbox configured",
    hasMore: false,
  }],
  ["every mailbox imported", [done("a"), done("b")], 3, false, {
    status: "succeeded",
    error: null,
    hasMore: false,
  }],
  ["nothing new anywhere", [done()], 0, false, {
    status: "succeeded",
    error: null,
    hasMore: false,
  }],
  ["every mailbox busy", [busy("b1"), busy("b2")], 0, false, {
    status: "skipped",
    error: "An import of this mailbox is already running",
    hasMore: false,
  }],
  ["the only mailbox paused", [paused()], 0, false, {
    status: "skipped",
    error: PAUSE,
    hasMore: false,
  }],
  ["busy and paused", [busy(), paused()], 0, false, {
    status: "skipped",
    error: `An import of this mailbox is already running; ${PAUSE}`,
    hasMore: false,
  }],
  ["one busy, the other imported", [busy(), done()], 1, false, {
    status: "succeeded",
    error: null,
    hasMore: false,
  }],
  ["paused next to one that imported", [paused(), done()], 1, false, {
    status: "partial",
    error: PAUSE,
    hasMore: false,
  }],
  ["paused next to one with nothing new", [paused(), done()], 0, false, {
    status: "failed",
    error: PAUSE,
    hasMore: false,
  }],
  ["the only mailbox failed", [failed(LOGIN)], 0, false, {
    status: "failed",
    error: LOGIN,
    hasMore: false,
  }],
  ["a failure after one that imported", [done(), failed(REFUSED)], 1, false, {
    status: "partial",
    error: REFUSED,
    hasMore: false,
  }],
  ["two failures, both named in order", [failed(LOGIN, "f1"), failed(REFUSED, "f2")], 0, false, {
    status: "failed",
    error: `${LOGIN}; ${REFUSED}`,
    hasMore: false,
  }],
  ["the budget reached", [more()], 2, false, { status: "partial", error: BUDGET, hasMore: true }],
  ["time up before the second mailbox", [done(), notStarted()], 0, false, {
    status: "partial",
    error: BUDGET,
    hasMore: true,
  }],
  ["shutting down after saving some", [more(), notStarted()], 4, true, {
    status: "partial",
    error: STOPPED,
    hasMore: true,
  }],
  ["shutting down before saving anything", [notStarted()], 0, true, {
    status: "failed",
    error: SHUT_DOWN,
    hasMore: true,
  }],
  ["shutting down after finishing everything", [done()], 3, true, {
    status: "succeeded",
    error: null,
    hasMore: false,
  }],
  ["a failure outranks the shutdown", [failed(REFUSED), notStarted()], 0, true, {
    status: "failed",
    error: REFUSED,
    hasMore: true,
  }],
  ["a failure outranks the budget", [more(), failed(REFUSED)], 2, false, {
    status: "partial",
    error: REFUSED,
    hasMore: true,
  }],
  // An OAuth mailbox waiting for its user to reconnect neither fails the run (no backoff,
  // no pause of the schedule and so of the user's other mailboxes) nor lets it succeed.
  ["the only mailbox needs a reconnect", [reconnect()], 0, false, {
    status: "skipped",
    error: RECONNECT,
    hasMore: false,
  }],
  ["a reconnect next to one with nothing new", [reconnect(), done()], 0, false, {
    status: "partial",
    error: RECONNECT,
    hasMore: false,
  }],
  ["a reconnect next to one that imported and has more", [more(), reconnect()], 3, false, {
    status: "partial",
    error: `${BUDGET}; ${RECONNECT}`,
    hasMore: true,
  }],
  ["a reconnect next to a failure", [failed(LOGIN), reconnect()], 0, false, {
    status: "failed",
    error: `${LOGIN}; ${RECONNECT}`,
    hasMore: false,
  }],
];

Deno.test("how a run ends: status, error text and has_more, case by case", () => {
  for (const [what, mailboxes, fetched, shuttingDown, expected] of TABLE) {
    assert.deepEqual(runOutcome(mailboxes, { fetched, shuttingDown }), expected, what);
  }
});

Deno.test("a run that never got its turn: partial and the next run continues, unless shutting down", () => {
  assert.deepEqual(notStartedOutcome("its messages are spent", false), {
    status: "partial",
    error:
      "Not started: this function instance had no budget left (its messages are spent); the next run continues",
    hasMore: true,
  });
  assert.deepEqual(notStartedOutcome("it was busy with other imports", true), {
    status: "failed",
    error: SHUT_DOWN,
    hasMore: true,
  });
});

Deno.test("each mailbox is listed in the run's details with only what applies to it", () => {
  assert.deepEqual(mailboxDetails(done("a")), { id: "a" });
  assert.deepEqual(mailboxDetails(busy("b")), { id: "b", already_running: true });
  assert.deepEqual(mailboxDetails(paused("p")), { id: "p", paused: true, error: PAUSE });
  assert.deepEqual(mailboxDetails(notStarted("n")), { id: "n", not_started: true });
  assert.deepEqual(mailboxDetails(reconnect("r")), {
    id: "r",
    reconnect_needed: true,
    error: RECONNECT,
  });
  assert.deepEqual(
    mailboxDetails({ mailboxId: "f", error: REFUSED, commands: { LOGIN: 1 } }),
    { id: "f", error: REFUSED, imap_commands: { LOGIN: 1 } },
  );
});
