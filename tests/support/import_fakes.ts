/**
 * Fakes of the importer's two narrow ports (ImapSession, MailStore) for the pure
 * logic tests of folder_sync.ts and import_run.ts. The real ones are tested against
 * the real Dovecot and Postgres in tests/.
 */
import type { ImapSession } from "../../functions-shared/import_emails/imap_session.ts";
import type {
  BatchResult,
  EmailRecord,
  FolderProgress,
  FolderState,
  Mailbox,
  MailStore,
} from "../../functions-shared/import_emails/mail_store.ts";

export const USER_ID = "6a1f2e3d-4c5b-4a69-8b7c-1d2e3f4a5b6c";
/** A credential distinctive enough that finding it anywhere is a leak. */
export const CREDENTIAL = "Sup3r-S3cret-Passw0rd!";

export function mailbox(id: string, overrides: Partial<Mailbox> = {}): Mailbox {
  return {
    id,
    user_id: USER_ID,
    host: "imap.example.test",
    port: 993,
    tls_mode: "tls",
    username: "alice@example.test",
    auth_kind: "password",
    folders: ["INBOX"],
    paused_reason: null,
    oauth_provider: null,
    reconnect_needed_at: null,
    ...overrides,
  };
}

export interface FakeMailOptions {
  mailboxes?: Mailbox[];
  /** Mailbox ids whose claim is refused (another run holds the lease). */
  busy?: string[];
  /** Credentials by mailbox id; missing -> null (no secret stored). */
  credentials?: Record<string, string | null>;
  /** What recordOutcome answers for a failed outcome (a pause reason). */
  pauseReason?: string | null;
  states?: FolderState[];
  importTargetsError?: Error;
  recordOutcomeError?: Error;
  releaseError?: Error;
  /** storeRotatedRefreshToken finds a newer token stored (its compare-and-swap fails). */
  staleRefreshToken?: boolean;
}

/** An in-memory MailStore that records every call in order. */
export class FakeMailStore implements MailStore {
  calls: Array<{ method: string; args: unknown[] }> = [];
  batches: Array<
    { mailboxId: string; folder: string; records: EmailRecord[]; progress: FolderProgress }
  > = [];
  seenKeys = new Set<string>();
  constructor(private options: FakeMailOptions = {}) {}

  private record(method: string, ...args: unknown[]) {
    this.calls.push({ method, args });
  }
  callsOf(method: string) {
    return this.calls.filter((call) => call.method === method).map((call) => call.args);
  }

  importTargets(userId: string): Promise<Mailbox[]> {
    this.record("importTargets", userId);
    if (this.options.importTargetsError) return Promise.reject(this.options.importTargetsError);
    return Promise.resolve(this.options.mailboxes ?? []);
  }
  credential(mailboxId: string): Promise<string | null> {
    this.record("credential", mailboxId);
    const credentials = this.options.credentials ?? {};
    return Promise.resolve(mailboxId in credentials ? credentials[mailboxId] : CREDENTIAL);
  }
  claim(mailboxId: string, runId: string, leaseSeconds: number): Promise<boolean> {
    this.record("claim", mailboxId, runId, leaseSeconds);
    return Promise.resolve(!(this.options.busy ?? []).includes(mailboxId));
  }
  release(mailboxId: string, runId: string): Promise<void> {
    this.record("release", mailboxId, runId);
    return this.options.releaseError
      ? Promise.reject(this.options.releaseError)
      : Promise.resolve();
  }
  folderStates(mailboxId: string): Promise<Map<string, FolderState>> {
    this.record("folderStates", mailboxId);
    return Promise.resolve(
      new Map((this.options.states ?? []).map((state) => [state.folder, state])),
    );
  }
  resetFolder(mailboxId: string, folder: string, uidValidity: number): Promise<void> {
    this.record("resetFolder", mailboxId, folder, uidValidity);
    return Promise.resolve();
  }
  storeBatch(
    mailboxId: string,
    folder: string,
    records: EmailRecord[],
    progress: FolderProgress,
  ): Promise<BatchResult> {
    this.record("storeBatch", mailboxId, folder, records.length, progress);
    this.batches.push({ mailboxId, folder, records, progress });
    let inserted = 0;
    for (const record of records) {
      const key = `${mailboxId}/${folder}/${record.message_key}`;
      if (!this.seenKeys.has(key)) inserted++;
      this.seenKeys.add(key);
    }
    return Promise.resolve({ inserted, remapped: 0, duplicates: records.length - inserted });
  }
  touchFolder(
    mailboxId: string,
    folder: string,
    progress: Omit<FolderProgress, "lastUid">,
  ): Promise<void> {
    this.record("touchFolder", mailboxId, folder, progress);
    return Promise.resolve();
  }
  storeRotatedRefreshToken(
    mailboxId: string,
    presentedSha256: string,
    newToken: string,
  ): Promise<boolean> {
    this.record("storeRotatedRefreshToken", mailboxId, presentedSha256, newToken);
    return Promise.resolve(!this.options.staleRefreshToken);
  }
  markReconnectNeeded(mailboxId: string, presentedSha256: string, error: string): Promise<boolean> {
    this.record("markReconnectNeeded", mailboxId, presentedSha256, error);
    return Promise.resolve(true);
  }
  recordOutcome(
    mailboxId: string,
    outcome: { error: string | null; authFailed: boolean },
  ): Promise<string | null> {
    this.record("recordOutcome", mailboxId, outcome);
    if (this.options.recordOutcomeError) return Promise.reject(this.options.recordOutcomeError);
    return Promise.resolve(outcome.error === null ? null : this.options.pauseReason ?? null);
  }
}

export interface FakeMessage {
  uid: number;
  source: string;
}

export interface FakeFolder {
  uidValidity: number;
  messages: FakeMessage[];
  /** A lying server: SEARCH announces the messages, FETCH sends none of them. */
  fetchNothing?: boolean;
}

/** An ImapSession over in-memory folders, behaving as an honest server does. */
export function fakeSession(
  folders: Record<string, FakeFolder>,
  options: { statusError?: Error; closeError?: Error } = {},
) {
  const events: string[] = [];
  const commands: Record<string, number> = {};
  const count = (command: string) => commands[command] = (commands[command] ?? 0) + 1;
  let closed = 0;
  const session: ImapSession = {
    commands,
    status(folder) {
      count("STATUS");
      events.push(`status ${folder}`);
      if (options.statusError) return Promise.reject(options.statusError);
      const state = folders[folder];
      if (!state) {
        return Promise.reject(new Error(`Folder "${folder}" does not exist on the server`));
      }
      const uidNext = Math.max(0, ...state.messages.map((m) => m.uid)) + 1;
      return Promise.resolve({
        uidValidity: state.uidValidity,
        uidNext,
        highestModseq: 7n,
        messages: state.messages.length,
      });
    },
    newUids(folder, afterUid) {
      count("SEARCH");
      events.push(`newUids ${folder}`);
      const state = folders[folder];
      const uids = state.messages.map((m) => m.uid).filter((uid) => uid > afterUid);
      return Promise.resolve({ uidValidity: state.uidValidity, uids: uids.sort((a, b) => a - b) });
    },
    fetchChunk(folder, uids) {
      count("FETCH");
      events.push(`fetch ${folder}`);
      const wanted = new Set(folders[folder].fetchNothing ? [] : uids);
      return Promise.resolve(
        folders[folder].messages.filter((message) => wanted.has(message.uid)).map((message) => {
          const source = new TextEncoder().encode(message.source);
          return {
            uid: message.uid,
            flags: ["\\Seen"],
            internalDate: null,
            size: source.length,
            bodyStructure: undefined,
            source,
          };
        }),
      );
    },
    close() {
      closed++;
      events.push("close");
      return options.closeError ? Promise.reject(options.closeError) : Promise.resolve();
    },
  };
  return {
    session,
    events,
    get closed() {
      return closed;
    },
  };
}

export function mail(uid: number): FakeMessage {
  return {
    uid,
    source: [
      `Message-ID: <m${uid}@example.test>`,
      "From: Bob <bob@example.test>",
      "To: alice@example.test",
      `Subject: Message ${uid}`,
      "Date: Mon, 2 Nov 2026 10:00:00 +0000",
      "",
      `Body of message ${uid}`,
      "",
    ].join("\r\n"),
  };
}

/** A refused login as imapflow reports it. */
export function authError(message: string) {
  return Object.assign(new Error(message), { authenticationFailed: true, responseText: message });
}
