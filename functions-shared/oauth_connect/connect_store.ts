/** The connect flow's database side (migration 20261203100010_oauth_connect.sql), as postgres. */
import type { Sql } from "../platform/database.ts";

export type TakenState = {
  userId: string;
  provider: string;
  codeVerifier: string;
  returnTo: string;
};

export interface ConnectStore {
  /** Throws a postgres error with code 42501 (anonymous) or 54000 (too many flows). */
  begin(flow: {
    userId: string;
    isAnonymous: boolean;
    provider: string;
    stateSha256: string;
    codeVerifier: string;
    returnTo: string;
  }): Promise<void>;
  /** Spends the state once; null for an unknown, spent or expired one. */
  takeState(stateSha256: string): Promise<TakenState | null>;
  park(connection: {
    userId: string;
    provider: string;
    address: string;
    imap: { host: string; port: number };
    refreshToken: string;
    ticketSha256: string;
  }): Promise<void>;
  /**
   * Deletes the user's own connected mailbox (its mail and Vault secret too) and returns what
   * revocation needs; null for another user's, an unknown or a password mailbox.
   */
  takeMailbox(
    userId: string,
    mailboxId: string,
  ): Promise<{ provider: string; refreshToken: string | null } | null>;
  /** The mailbox id; null for another user's, a spent or an expired ticket. */
  finish(user: { userId: string; isAnonymous: boolean }, ticketSha256: string): Promise<
    string | null
  >;
}

export function createConnectStore(sql: Sql): ConnectStore {
  return {
    async begin(flow) {
      await sql`select auto_sync.begin_oauth_connect(${flow.userId}::uuid, ${flow.isAnonymous},
        ${flow.provider}, ${flow.stateSha256}, ${flow.codeVerifier}, ${flow.returnTo})`;
    },
    async takeState(stateSha256) {
      const [row] = await sql`select * from auto_sync.take_oauth_state(${stateSha256})`;
      return row
        ? {
          userId: row.user_id,
          provider: row.provider,
          codeVerifier: row.code_verifier,
          returnTo: row.return_to,
        }
        : null;
    },
    async park(connection) {
      await sql`select auto_sync.park_oauth_connection(${connection.userId}::uuid,
        ${connection.provider}, ${connection.address}, ${connection.imap.host},
        ${connection.imap.port}, ${connection.refreshToken}, ${connection.ticketSha256})`;
    },
    async takeMailbox(userId, mailboxId) {
      const [row] = await sql`
        select * from auto_sync.take_oauth_mailbox(${userId}::uuid, ${mailboxId}::uuid)`;
      return row ? { provider: row.provider, refreshToken: row.refresh_token } : null;
    },
    async finish(user, ticketSha256) {
      const [row] = await sql`select auto_sync.finish_oauth_connect(${user.userId}::uuid,
        ${user.isAnonymous}, ${ticketSha256}) as id`;
      return row?.id ?? null;
    },
  };
}
