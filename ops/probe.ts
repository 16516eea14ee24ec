/**
 * A signed probe: a request in the exact wire format, for a run id that does not
 * exist. A function that accepts the signature answers 404 (run unknown) and
 * imports nothing; one that refuses it answers 401. Doctor and the key tool use it
 * to prove which keys the deployed function accepts.
 */
import { createHmac } from "node:crypto";
import { Buffer } from "node:buffer";
import {
  buildClaims,
  jsonbText,
  nowSeconds,
  signClaims,
  type SignedRequest,
  webhookHeaders,
} from "../functions-shared/wire/client/signed_request.ts";
import { SigningKey } from "../functions-shared/wire/standard_webhooks.ts";

export type ProbeVerdict = "accepted" | "refused" | "unexpected";

export interface ProbeResult {
  verdict: ProbeVerdict;
  status: number;
}

/** A user id no account has: the probe's subject. */
export const PROBE_SUBJECT = "00000000-0000-4000-8000-00000000d0c7";

/** The probe's claims: a fresh run id that no run has, issued now. */
export function probeClaims() {
  return buildClaims(PROBE_SUBJECT, crypto.randomUUID(), { iat: nowSeconds() });
}

/** Signs with raw key bytes (from Vault or a keyring) and sends the probe. */
export async function sendSignedProbe(url: string, keys: Uint8Array[]): Promise<ProbeResult> {
  const request = signClaims(keys.map((key) => new SigningKey(key)), probeClaims());
  return await sendProbe(url, request);
}

/** The same probe with no signature at all: a healthy function refuses it. */
export async function sendUnsignedProbe(url: string): Promise<ProbeResult> {
  const claims = probeClaims();
  return await send(url, jsonbText(claims), {
    "content-type": "application/json",
    "webhook-id": claims.run_id,
    "webhook-timestamp": String(claims.iat),
  });
}

/** Sends a signed request (one the database signed, or one signed here). */
export async function sendProbe(url: string, request: SignedRequest): Promise<ProbeResult> {
  return await send(url, request.body, webhookHeaders(request));
}

async function send(
  url: string,
  body: BodyInit,
  headers: Record<string, string>,
): Promise<ProbeResult> {
  const response = await fetch(url, {
    method: "POST",
    headers,
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
