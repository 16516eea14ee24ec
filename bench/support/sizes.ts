/**
 * Every benchmark's sizes, in one place: the full run (`./scripts/bench`) and the
 * smoke run (`./scripts/bench --smoke`, which `./scripts/test` runs): the same code
 * at tiny sizes, so a broken benchmark fails CI within seconds. Smoke figures mean
 * nothing; only "it ran and every answer was right" does.
 *
 * A benchmark is in smoke mode when it is given `--smoke` (an argument, so that no
 * benchmark needs `--allow-env` for it).
 */

export const smoke = Deno.args.includes("--smoke");

const full = {
  verify: { pool: 1024, rounds: 7, sliceMs: 300, warmupMs: 400 },
  httpReject: {
    rounds: 6,
    roundMs: 3_000,
    warmupMs: 1_500,
    requestPool: 512,
    /** 10 MiB bodies with Content-Length, then streamed without it. */
    bigWithLength: 100,
    bigStreamed: 20,
    /** Refusals one at a time before "before" is read. */
    warmupRequests: 50,
    /** Refusal flood: heap read after the first, then after the total. */
    floodFirst: 1_000,
    floodTotal: 200_000,
  },
  dispatch: { schedules: 10_000, rounds: 6 },
  import: {
    /** The big mailbox (`--messages` overrides it); the small one is a tenth. */
    messages: 10_000,
    /** 5 MB messages in each mailbox. */
    bigMessages: 5,
    /** Messages each way of seeding is timed on. */
    calibration: 200,
    /** First imports at once in one process, heap capped. */
    concurrentImports: 4,
    incrementalRounds: 5,
    newMessages: 10,
  },
  firstImport: {
    /** Mailboxes imported through the real path, one after another. */
    mailboxes: [10_000, 50_000],
    /** 5 MB messages in each. */
    bigMessages: 5,
    /** The honest user's mailbox in the fairness rounds. */
    honest: 1_000,
    rounds: 3,
  },
  scale: {
    /** Schedules (10 % due); the first and last are compared. */
    sizes: [1_000, 10_000, 100_000],
    rounds: 3,
    /** One pg_cron job per user; 0 skips the part (it waits for a minute boundary). */
    perUserJobs: 1_000,
    deliveryRequests: 2_000,
  },
};

const tiny: typeof full = {
  verify: { pool: 32, rounds: 1, sliceMs: 20, warmupMs: 20 },
  httpReject: {
    rounds: 2,
    roundMs: 200,
    warmupMs: 100,
    requestPool: 16,
    bigWithLength: 2,
    bigStreamed: 1,
    warmupRequests: 5,
    floodFirst: 50,
    floodTotal: 200,
  },
  dispatch: { schedules: 100, rounds: 1 },
  import: {
    messages: 30,
    bigMessages: 1,
    calibration: 10,
    concurrentImports: 2,
    incrementalRounds: 1,
    newMessages: 2,
  },
  firstImport: { mailboxes: [300], bigMessages: 1, honest: 30, rounds: 1 },
  scale: { sizes: [100, 200, 400], rounds: 1, perUserJobs: 0, deliveryRequests: 20 },
};

export const sizes: typeof full = smoke ? tiny : full;
