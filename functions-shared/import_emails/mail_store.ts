/** The importer's database side, through the auto_sync.* functions for the service role. */
import type { Sql } from "../platform/database.ts";
import type { ParsedEmail } from "./message_parser.ts";
import type { Attachment } from "./bodystructure.ts";

export interface Mailbox {
  id: string;
  user_id: string;
  host: string;
  port: number;
  tls_mode: "tls" | "starttls" | "plain";
  username: string;
  auth_kind: "password" | "oauth2";
  folders: string[];
  /** Set when imports stopped on their own (repeated login failures); the importer skips it. */
  paused_reason: string | null;
  /** The provider whose client redeems the stored refresh token; null: password or access token. */
  oauth_provider?: string | null;
  /** The provider refused the grant: skipped until the user connects the mailbox again. */
  reconnect_needed_at?: Date | string | null;
}

export interface FolderState {
  folder: string;
  uid_validity: number;
  last_uid: number;
}

/** A parsed message as store_batch takes it: the parse plus what IMAP says of it. */
export interface EmailRecord extends ParsedEmail {
  uid: number;
  internal_date: string | null;
  flags: string[];
  size_bytes: number | null;
  source_truncated: boolean;
  attachments: Attachment[];
}

export interface BatchResult {
  inserted: number;
  remapped: number;
  duplicates: number;
}

export interface FolderProgress {
  uidValidity: number;
  lastUid: number;
  highestModseq: bigint | null;
  messageCount: number | null;
}

export interface MailStore {
  importTargets(userId: string): Promise<Mailbox[]>;
  credential(mailboxId: string): Promise<string | null>;
  claim(mailboxId: string, runId: string, leaseSeconds: number): Promise<boolean>;
  release(mailboxId: string, runId: string): Promise<void>;
  folderStates(mailboxId: string): Promise<Map<string, FolderState>>;
  resetFolder(mailboxId: string, folder: string, uidValidity: number): Promise<void>;
  /** Messages and the folder state covering them, in one transaction. */
  storeBatch(
    mailboxId: string,
    folder: string,
    records: EmailRecord[],
    progress: FolderProgress,
  ): Promise<BatchResult>;
  touchFolder(
    mailboxId: string,
    folder: string,
    progress: Omit<FolderProgress, "lastUid">,
  ): Promise<void>;
  /** Compare-and-swap of an OAuth mailbox's refresh token (false: a newer one is stored). */
  storeRotatedRefreshToken(
    mailboxId: string,
    presentedSha256: string,
    newToken: string,
  ): Promise<boolean>;
  /** The provider refused the grant of this stored token: the mailbox needs a reconnect. */
  markReconnectNeeded(mailboxId: string, presentedSha256: string, error: string): Promise<boolean>;
  /** Returns the pause reason when this outcome paused the mailbox. */
  recordOutcome(
    mailboxId: string,
    outcome: { error: string | null; authFailed: boolean },
  ): Promise<string | null>;
}

/**
 * auto_sync.store_batch's call. The bodies, nearly all of the bytes, go as plain text
 * parameters ($8...): as JSON they would be escaped here and unescaped by Postgres
 * (migration 20261129130200_mail_importer.sql). The rest of each record goes in one JSON parameter.
 */
export function storeBatchQuery(
  batch: { mailboxId: string; folder: string; records: EmailRecord[]; progress: FolderProgress },
): { text: string; parameters: (string | number | null)[] } {
  const { records, progress } = batch;
  const metadata = records.map(({ body_text: _, ...rest }) => rest);
  const bodies = records.map((record) => record.body_text);
  const bodyParameters = bodies.map((_, i) => `$${i + 8}::text`).join(", ");
  return {
    text: `select * from auto_sync.store_batch($1::uuid, $2::text, $3::bigint, $4::text::jsonb,
           $5::bigint, $6::numeric, $7::integer, array[${bodyParameters}]::text[])`,
    parameters: [
      batch.mailboxId,
      batch.folder,
      progress.uidValidity,
      JSON.stringify(metadata),
      progress.lastUid,
      progress.highestModseq?.toString() ?? null,
      progress.messageCount,
      ...bodies,
    ],
  };
}

export function createMailStore(sql: Sql): MailStore {
  return {
    async importTargets(userId) {
      return await sql<Mailbox[]>`
        select id, user_id, host, port, tls_mode, username, auth_kind, folders, paused_reason,
               oauth_provider, reconnect_needed_at
          from auto_sync.import_targets(${userId}::uuid)`;
    },
    async credential(mailboxId) {
      const [row] = await sql`select auto_sync.mailbox_credential(${mailboxId}::uuid) as secret`;
      return row?.secret ?? null;
    },
    async claim(mailboxId, runId, leaseSeconds) {
      const [row] = await sql`
        select auto_sync.claim_mailbox(${mailboxId}::uuid, ${runId}::uuid, make_interval(secs => ${leaseSeconds})) as claimed`;
      return row.claimed === true;
    },
    async release(mailboxId, runId) {
      await sql`select auto_sync.release_mailbox(${mailboxId}::uuid, ${runId}::uuid)`;
    },
    async folderStates(mailboxId) {
      const rows = await sql`
        select folder, uid_validity, last_uid from auto_sync.folder_states(${mailboxId}::uuid)`;
      return new Map(rows.map((row) => [
        row.folder as string,
        {
          folder: row.folder,
          uid_validity: Number(row.uid_validity),
          last_uid: Number(row.last_uid),
        },
      ]));
    },
    async resetFolder(mailboxId, folder, uidValidity) {
      await sql`select auto_sync.reset_folder(${mailboxId}::uuid, ${folder}, ${uidValidity})`;
    },
    async storeBatch(mailboxId, folder, records, progress) {
      const query = storeBatchQuery({ mailboxId, folder, records, progress });
      const [row] = await sql.unsafe(query.text, query.parameters, { prepare: true });
      return { inserted: row.inserted, remapped: row.remapped, duplicates: row.duplicates };
    },
    async touchFolder(mailboxId, folder, progress) {
      await sql`
        select auto_sync.touch_folder(${mailboxId}::uuid, ${folder}, ${progress.uidValidity},
          ${progress.highestModseq?.toString() ?? null}::numeric, ${progress.messageCount})`;
    },
    async storeRotatedRefreshToken(mailboxId, presentedSha256, newToken) {
      const [row] = await sql`
        select auto_sync.store_rotated_refresh_token(${mailboxId}::uuid, ${presentedSha256}, ${newToken}) as kept`;
      return row.kept === true;
    },
    async markReconnectNeeded(mailboxId, presentedSha256, error) {
      const [row] = await sql`
        select auto_sync.mark_reconnect_needed(${mailboxId}::uuid, ${presentedSha256}, ${error}) as marked`;
      return row.marked === true;
    },
    async recordOutcome(mailboxId, outcome) {
      const [row] = await sql`
        select auto_sync.record_mailbox_outcome(${mailboxId}::uuid, ${outcome.error}, ${outcome.authFailed}) as paused`;
      return row.paused ?? null;
    },
  };
}
