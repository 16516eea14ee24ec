/**
 * A second functions gateway (local-stack/gateway.ts) started by a test, on its own
 * port, e.g. in another project mode or over a throwaway functions folder. Its
 * output (and its functions') is kept so a test can assert on what a user would
 * read in the logs.
 */
import { testPorts } from "../../local-stack/urls.ts";
import { dbUrl, stateDir } from "./local_stack.ts";

const gatewayPath = new URL("../../local-stack/gateway.ts", import.meta.url).pathname;

export interface GatewayProcess {
  url: string;
  functionsUrl: string;
  /** Everything the gateway and its functions printed so far. */
  output(): string;
  stop(): Promise<void>;
}

export async function startGateway(
  port: number,
  args: string[],
): Promise<GatewayProcess> {
  // In a process group of its own (setsid), so that stopping it also stops the
  // functions it started: `deno serve` waits for idle keep-alive connections on SIGTERM.
  const child = new Deno.Command("setsid", {
    args: [
      Deno.execPath(),
      "run",
      "--quiet",
      // All: Deno lets only --allow-all read the functions' CPU time in /proc.
      "--allow-all",
      gatewayPath,
      "--port",
      String(port),
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  const collected = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const url = `http://127.0.0.1:${port}`;
  const gateway: GatewayProcess = {
    url,
    functionsUrl: `${url}/functions/v1`,
    output: () => text,
    stop: async () => {
      try {
        Deno.kill(-child.pid, "SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      await collected;
    },
  };
  // Up when it answers at all (health is 503 while a function is down, which some tests want).
  const started = Date.now();
  while (true) {
    try {
      await (await fetch(`${url}/health`)).body?.cancel();
      return gateway;
    } catch {
      if (Date.now() - started > 20_000) {
        await gateway.stop();
        throw new Error(`Gateway on port ${port} did not start: ${text}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * A second gateway over this repository's functions, the stack's database and project
 * keys, on the tests' platform port: the stack's function secrets unless `envFile`
 * names other ones, and `flags` for the mode, limits or JWT check under test.
 */
export function stackGateway(
  flags: string[],
  options: { envFile?: string } = {},
): Promise<GatewayProcess> {
  return startGateway(testPorts.platformGateway, [
    "--db-url",
    dbUrl,
    "--env-file",
    options.envFile ?? `${stateDir}/functions.env`,
    "--project",
    `${stateDir}/project.json`,
    ...flags,
  ]);
}

/** Polls the gateway's health until every function is up (true) or one has exited (false). */
export async function functionsUp(gateway: GatewayProcess, timeoutMs = 30_000): Promise<boolean> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const response = await fetch(`${gateway.url}/health`);
    await response.body?.cancel();
    if (response.ok) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}
