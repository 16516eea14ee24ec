/**
 * The importer's parse (message_parser.ts `parseMessage`, the CPU of a first import
 * once the bytes are fetched) against the same code at another git revision, side by
 * side in one process.
 *
 * Mail: the import benchmark's (bench/mail_corpus.ts, seed 7: 2 KB–200 KB, plain,
 * alternative and mixed, encoded-word names and subjects), and the real-world corpus
 * of tests/fixtures/mail_corpus/. Each round parses every message with the baseline
 * and with this checkout, in alternating order; the figure is the median round of
 * each, and their ratio (this / baseline: 1.00× is as fast, 0.90× is 10 % slower).
 *
 *   deno run --allow-read --allow-write --allow-run --allow-env bench/parse_bench.ts \
 *     [--baseline main] [--messages 2000] [--rounds 7]
 */
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

async function timeParse(parse: typeof current.parseMessage, mail: Uint8Array[]) {
  const start = performance.now();
  for (const source of mail) await parse(source);
  return performance.now() - start;
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

console.log(`parse throughput, this checkout vs ${values.baseline} (median of ${rounds} rounds)`);
for (const [name, mail] of Object.entries(workloads)) {
  const megabytes = mail.reduce((sum, source) => sum + source.length, 0) / 1e6;
  // Warm up both (JIT, module-level caches) before anything is timed.
  await timeParse(baseline, mail);
  await timeParse(current.parseMessage, mail);
  const times = { baseline: [] as number[], current: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      times.baseline.push(await timeParse(baseline, mail));
      times.current.push(await timeParse(current.parseMessage, mail));
    } else {
      times.current.push(await timeParse(current.parseMessage, mail));
      times.baseline.push(await timeParse(baseline, mail));
    }
  }
  const rate = (ms: number) => `${Math.round(mail.length / (ms / 1000))} msg/s`;
  const [before, after] = [median(times.baseline), median(times.current)];
  console.log(
    `  ${name} (${mail.length} messages, ${megabytes.toFixed(1)} MB): ` +
      `baseline ${rate(before)}, this ${rate(after)}, ratio ${(before / after).toFixed(2)}×`,
  );
  console.log(`summary: parse ${name}: ${(before / after).toFixed(2)}× the baseline's rate`);
}
