/**
 * The app side of auto-sync with supabase-js and the generated types (types/database.ts):
 * connect a mailbox, turn auto-sync on, "sync now", and a run's status. Every call runs as
 * the signed-in user whose access token the client carries: the database functions act
 * for that user only. Type-checked by `deno check` (./scripts/test), not run.
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import type { Database } from "../../../types/database.ts";

export type AutoSyncClient = SupabaseClient<Database>;
export type SyncRun = Database["public"]["Functions"]["get_auto_sync_run"]["Returns"][number];
type AddMailboxArgs = Database["public"]["Functions"]["add_mailbox"]["Args"];

/** A client acting as the user whose access token came with the request. */
export function clientFor(
  accessToken: string,
  project: { url: string; publishableKey: string },
): AutoSyncClient {
  return createClient<Database>(project.url, project.publishableKey, {
    global: { headers: { Authorization: `Bearer ${accessToken}` } },
    auth: { persistSession: false, autoRefreshToken: false },
  });
}

/** Connects an IMAP mailbox; the password goes straight into Vault. Returns its id. */
export async function connectMailbox(
  supabase: AutoSyncClient,
  mailbox: Pick<AddMailboxArgs, "p_host" | "p_port" | "p_username" | "p_credential" | "p_folders">,
): Promise<string> {
  const { data, error } = await supabase.rpc("add_mailbox", mailbox);
  if (error) throw new Error(`Cannot connect mailbox: ${error.message}`);
  return data;
}

/** Turns auto-sync on, every `every` (a Postgres interval: '30 minutes', 5 minutes to 30 days). */
export async function enableAutoSync(supabase: AutoSyncClient, every: string) {
  const { data, error } = await supabase.rpc("enable_auto_sync", { p_every: every });
  if (error) throw new Error(`Cannot enable auto-sync: ${error.message}`);
  return data[0]; // { enabled, every, next_run_at }
}

/** "Sync now": import-emails answers 202 {run_id}, or 429 while a run is in flight. */
export async function syncNow(supabase: AutoSyncClient): Promise<{ run_id: string }> {
  const { data, error } = await supabase.functions.invoke<{ run_id: string }>("import-emails", {
    method: "POST",
  });
  if (error || !data) throw new Error(`Cannot sync now: ${error?.message ?? "no answer"}`);
  return data;
}

/** One of the user's runs, or null (unknown, or another user's). */
export async function runStatus(supabase: AutoSyncClient, runId: string): Promise<SyncRun | null> {
  const { data, error } = await supabase.rpc("get_auto_sync_run", { p_run_id: runId });
  if (error) throw new Error(`Cannot read run: ${error.message}`);
  return data[0] ?? null;
}

/** The mailboxes whose state needs the user (paused, credential refused). */
export async function mailboxesNeedingUser(supabase: AutoSyncClient) {
  const { data, error } = await supabase.rpc("get_mailbox_states");
  if (error) throw new Error(`Cannot read mailboxes: ${error.message}`);
  return data.filter((mailbox) => mailbox.needs_user);
}
