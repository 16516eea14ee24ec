/**
 * The importer's parse (message_parser.ts `parseMessage`, the CPU of a first import
 * once the bytes are fetched) against the same code at another git revision, side by
 * side in one process.
 *
 * Mail: the import benchmark's (bench/mail_corpus.ts, seed 7: 2 KB–200 KB, plain,
 * alternative and mixed, encoded-word names and subjects), and the real-world corpus
 * of tests/fixtures/mail_corpus/. Each round parses every message with the baseline
 * and with this checkout, block by block (50 messages), the two in alternating order,
 * so that a busy machine slows both alike; what is counted is the process's CPU time
 * (process.cpuUsage), steadier than the wall clock on a shared machine. The figure is
 * the median round of each, and their ratio (this / baseline: 1.00× is as fast, 0.90×
 * is 10 % slower).
 *
 *   deno run --allow-read --allow-write --allow-run --allow-env bench/parse_bench.ts \
 *     [--baseline main] [--messages 2000] [--rounds 7]
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { corpusMessages } from "../tests/support/mail_reference.ts";
import * as current from "../functions-shared/import_emails/message_parser.ts";
import { generateMessage } from "./mail_corpus.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    baseline: { type: "string", default: "main" },
    messages: { type: "string", default: "2000" },
    rounds: { type: "string", default: "7" },
  },
});
const repo = new URL("../", import.meta.url).pathname;

/** functions-shared/ at `ref`, in a temporary folder; its parseMessage. */
async function baselineParser(ref: string): Promise<typeof current.parseMessage> {
  const dir = await Deno.makeTempDir({ prefix: "parse_bench_" });
  const archive = new Deno.Command("bash", {
    args: ["-c", `git -C "$1" archive "$2" functions-shared | tar -x -C "$3"`, "_", repo, ref, dir],
  });
  const { success, stderr } = await archive.output();
  if (!success) {
    throw new Error(`Cannot extract "${ref}": ${new TextDecoder().decode(stderr)}`);
  }
  const module = await import(
    pathToFileURL(`${dir}/functions-shared/import_emails/message_parser.ts`).href
  );
  return module.parseMessage;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const BLOCK = 50;

/** CPU milliseconds `parse` takes over `block`. */
async function cpuOf(parse: typeof current.parseMessage, block: Uint8Array[]) {
  const start = process.cpuUsage();
  for (const source of block) await parse(source);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

/** One round: both parsers over every block; CPU ms of each. */
async function round(mail: Uint8Array[], parity: number) {
  const times = { baseline: 0, current: 0 };
  for (let start = 0; start < mail.length; start += BLOCK) {
    const block = mail.slice(start, start + BLOCK);
    if ((start / BLOCK + parity) % 2 === 0) {
      times.baseline += await cpuOf(baseline, block);
      times.current += await cpuOf(current.parseMessage, block);
    } else {
      times.current += await cpuOf(current.parseMessage, block);
      times.baseline += await cpuOf(baseline, block);
    }
  }
  return times;
}

const baseline = await baselineParser(values.baseline!);
const rounds = Number(values.rounds);
const workloads = {
  "benchmark mail": Array.from(
    { length: Number(values.messages) },
    (_, index) => generateMessage(index, { seed: 7 }).source,
  ),
  "real-world corpus": corpusMessages().map((message) => message.source),
};

console.log(
  `parse throughput, this checkout vs ${values.baseline} (CPU time, median of ${rounds} rounds)`,
);
for (const [name, mail] of Object.entries(workloads)) {
  const megabytes = mail.reduce((sum, source) => sum + source.length, 0) / 1e6;
  await round(mail, 0); // warm-up (JIT, module-level caches), not counted
  const times = { baseline: [] as number[], current: [] as number[] };
  for (let index = 0; index < rounds; index++) {
    const { baseline, current } = await round(mail, index);
    times.baseline.push(baseline);
    times.current.push(current);
  }
  const rate = (ms: number) => `${Math.round(mail.length / (ms / 1000))} msg/CPU-s`;
  const [before, after] = [median(times.baseline), median(times.current)];
  console.log(
    `  ${name} (${mail.length} messages, ${megabytes.toFixed(1)} MB): ` +
      `baseline ${rate(before)}, this ${rate(after)}, ratio ${(before / after).toFixed(2)}×`,
  );
  console.log(`summary: parse ${name}: ${(before / after).toFixed(2)}× the baseline's rate`);
}
