/**
 * Starts a `deno serve` child process for a benchmark and stops it afterwards.
 * The child's pid is the Deno runtime itself (no wrapper shell), so
 * /proc/<pid>/status is the server's own memory.
 */

import type { ProbeMemory } from "./memory_probe_server.ts";

// The repository root: the child runs there so it finds deno.json (its import map).
const repo = new URL("../../", import.meta.url).pathname;

export interface ChildServer {
  name: string;
  pid: number;
  url: string;
  stop(): Promise<void>;
}

/** A server started with `probe: true`: its memory as the edge runtime counts it. */
export interface ProbedServer extends ChildServer {
  /** Heap used + external and RSS; `gc` first collects garbage (see memory_probe_server.ts). */
  memory(options?: { gc?: boolean }): Promise<ProbeMemory>;
}

/** A port that was free a moment ago (the kernel picks it). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function waitUntilListening(
  url: string,
  child: Deno.ChildProcess,
  name: string,
): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !exited) {
    try {
      const response = await fetch(url); // any answer will do (the function says 405 to GET)
      await response.body?.cancel();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(
    `Cannot start ${name}: ${
      exited ? "it exited" : "no answer within 30 s"
    }; run its command by hand to see why`,
  );
}

interface ServerOptions {
  env?: Record<string, string>;
  permissions?: string[];
}

/**
 * `deno serve --host 127.0.0.1 --port <free> <permissions> <entry>` with `env` added
 * to this process's environment. Output goes to /dev/null: the function logs one
 * line per refused request, and a pipe nobody reads would stall it.
 */
export function startServer(
  name: string,
  entry: string,
  options: ServerOptions = {},
): Promise<ChildServer> {
  const port = freePort();
  const args = [
    "serve",
    "--quiet",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    ...(options.permissions ?? []),
    entry,
  ];
  return spawnServer(name, { args, port, env: options.env });
}

/**
 * The same entry served by bench/support/memory_probe_server.ts (Deno.serve, as
 * `deno serve` does), with its memory probe on a second port.
 */
export async function startProbedServer(
  name: string,
  entry: string,
  options: ServerOptions = {},
): Promise<ProbedServer> {
  const [port, probePort] = [freePort(), freePort()];
  const args = [
    "run",
    "--quiet",
    "--v8-flags=--expose-gc",
    ...(options.permissions ?? []),
    `${repo}bench/support/memory_probe_server.ts`,
    entry,
    String(port),
    String(probePort),
  ];
  const server = await spawnServer(name, { args, port, env: options.env });
  const memory = async (probe: { gc?: boolean } = {}) => {
    const response = await fetch(`http://127.0.0.1:${probePort}/memory${probe.gc ? "?gc=1" : ""}`);
    if (!response.ok) throw new Error(`Memory probe of ${name}: ${await response.text()}`);
    return await response.json() as ProbeMemory;
  };
  return { ...server, memory };
}

async function spawnServer(
  name: string,
  spec: { args: string[]; port: number; env?: Record<string, string> },
): Promise<ChildServer> {
  const { args, port } = spec;
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: repo,
    env: spec.env ?? {},
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}/`;
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
  };
  try {
    await waitUntilListening(url, child, name);
  } catch (error) {
    await stop();
    throw error;
  }
  return { name, pid: child.pid, url, stop };
}

export interface MemoryStatus {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size since the process started ("high water mark"), bytes. */
  hwm: number;
}

/** VmRSS and VmHWM of a process, from /proc/<pid>/status. */
export function readMemory(pid: number): MemoryStatus {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (field: string) =>
    Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1] ?? NaN) * 1024;
  return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
}

export const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

// Linux reports process CPU time in clock ticks of 1/100 s (USER_HZ) on x86_64 and arm64.
const TICKS_PER_SECOND = 100;

/** User + system CPU seconds a process (all its threads) has used, from /proc/<pid>/stat. */
export function readCpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}
