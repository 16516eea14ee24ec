/**
 * A signed probe: a request in the exact wire format, for a run id that does not
 * exist. A function that accepts the signature answers 404 (run unknown) and
 * imports nothing; one that refuses it answers 401. Doctor and the key tool use it
 * to prove which keys the deployed function accepts.
 */
import { createHmac } from "node:crypto";
import { Buffer } from "node:buffer";

export type ProbeVerdict = "accepted" | "refused" | "unexpected";

export interface ProbeResult {
  verdict: ProbeVerdict;
  status: number;
}

function probeBody(nowSeconds: number, runId: string) {
  // The same shape and key order as jsonb::text in auto_sync.dispatch().
  return `{"aud": "cron-auto-sync", "exp": ${
    nowSeconds + 300
  }, "iat": ${nowSeconds}, "sub": "00000000-0000-4000-8000-00000000d0c7", "scope": "import-emails", "run_id": "${runId}"}`;
}

/** Signs with raw key bytes (from Vault or a keyring) and sends the probe. */
export async function sendSignedProbe(url: string, keys: Uint8Array[]): Promise<ProbeResult> {
  const runId = crypto.randomUUID();
  const timestamp = Math.floor(Date.now() / 1000);
  const body = probeBody(timestamp, runId);
  const signature = keys.map((key) =>
    `v1,${createHmac("sha256", key).update(`${runId}.${timestamp}.${body}`).digest("base64")}`
  ).join(" ");
  return await send(url, body, {
    "webhook-id": runId,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signature,
  });
}

/** The same probe with no signature at all: a healthy function refuses it. */
export async function sendUnsignedProbe(url: string): Promise<ProbeResult> {
  const runId = crypto.randomUUID();
  const timestamp = Math.floor(Date.now() / 1000);
  return await send(url, probeBody(timestamp, runId), {
    "webhook-id": runId,
    "webhook-timestamp": String(timestamp),
  });
}

async function send(
  url: string,
  body: string,
  headers: Record<string, string>,
): Promise<ProbeResult> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
    signal: AbortSignal.timeout(15_000),
  });
  await response.body?.cancel();
  const verdict = response.status === 404
    ? "accepted"
    : response.status === 401
    ? "refused"
    : "unexpected";
  return { verdict, status: response.status };
}

/** Key bytes of a `whsec_` secret. */
export const keyBytes = (secret: string) =>
  new Uint8Array(Buffer.from(secret.replace(/^(v1,)?whsec_/, ""), "base64"));

/** A short, non-reversible name for a key: what logs and listings show instead of it. */
export function fingerprint(key: Uint8Array): string {
  return createHmac("sha256", "auto-sync key fingerprint").update(key).digest("hex").slice(0, 12);
}
