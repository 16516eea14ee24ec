/** Error description for a failed mailbox import, and the credential scrub. */
import { ReconnectNeededError, TokenRequestError } from "../oauth/oauth_errors.ts";
import { OAuthNotConfiguredError } from "./oauth_access.ts";
import { safeLine } from "./safe_text.ts";
import { HostNotAllowedError, ImapSessionError } from "./session_errors.ts";
import type { Mailbox } from "./mail_store.ts";

const CANNOT_CONNECT =
  /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|CONNECT_TIMEOUT|GREETING_TIMEOUT|ClosedAfterConnectTLS|ClosedAfterConnectText)$/;
const CONNECTION_LOST = /^(ECONNRESET|EPIPE|NoConnection|EConnectionClosed|ETIMEOUT)$/;

/** The text without the credential; scrub before any cut, so no part of it survives one. */
export function withoutCredential(text: string, credential: string | null): string {
  return credential && credential.length >= 4 ? text.replaceAll(credential, "[redacted]") : text;
}

/** What a user reads for an OAuth mailbox whose grant the provider refused. */
export function reconnectNeededText(mailbox: Mailbox): string {
  return `Reconnect needed: ${
    mailbox.oauth_provider ?? "the provider"
  } no longer accepts this mailbox's connection (revoked, expired or replaced); connect it again`;
}

/**
 * The error text a user reads for a failed mailbox import (run and mailbox rows).
 * Generic where details would make the importer an oracle for the network it runs
 * in: no resolved address, no connect, timeout or certificate detail (those go to
 * the log). Server text is kept only for IMAP command errors, one line, without
 * control characters, and with the credential scrubbed.
 */
export function describeImportError(error: unknown, mailbox: Mailbox, credential: string | null) {
  const e = error as {
    authenticationFailed?: boolean;
    code?: string;
    message?: string;
    responseText?: string;
  };
  const server = `"${mailbox.host}:${mailbox.port}"`;
  let text: string;
  const provider = `"${mailbox.oauth_provider}"`;
  if (error instanceof ReconnectNeededError) {
    text = reconnectNeededText(mailbox);
  } else if (error instanceof OAuthNotConfiguredError) {
    text = `Sign-in with ${provider} is not configured on this server; the operator must set it up`;
  } else if (error instanceof TokenRequestError) {
    // The kind says whose problem it is; the provider's own text is never shown.
    text = error.kind === "client"
      ? `The server's sign-in with ${provider} was refused by the provider; the operator must fix its registration`
      : `Cannot get an access token from ${provider} (${
        error.kind === "transient" ? "no usable answer" : "an unusable token"
      }); the next run retries`;
  } else if (e?.authenticationFailed) {
    text = `Login failed for "${mailbox.username}" at ${mailbox.host}: the server refused the ${
      mailbox.auth_kind === "oauth2" ? "access token" : "password"
    }`;
  } else if (error instanceof ImapSessionError) {
    text = `${error.message} (${server})`;
  } else if (error instanceof HostNotAllowedError || (e?.code && CANNOT_CONNECT.test(e.code))) {
    text = `Cannot connect to the mail server ${server}`;
  } else if (e?.code && CONNECTION_LOST.test(e.code)) {
    text = `The connection to the mail server ${server} was lost`;
  } else if (e?.code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(e.code)) {
    text = `The TLS certificate of ${mailbox.host} is not trusted`;
  } else {
    const message = error instanceof Error ? error.message : String(error);
    const detail = e?.responseText && e.responseText !== message ? `: ${e.responseText}` : "";
    text = `IMAP error at ${mailbox.host}: ${message.split("\n")[0]}${detail}`;
  }
  return {
    text: safeLine(withoutCredential(text, credential), 500),
    authFailed: Boolean(e?.authenticationFailed),
  };
}
