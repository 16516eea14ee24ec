/**
 * The errors an IMAP session throws of its own (the rest are imapflow's and the
 * socket's), in a module of their own so that whoever describes them to the user
 * (import_error.ts) needs neither the session nor imapflow.
 */

/**
 * The server broke the protocol, a bound or the time limit. The message is safe to
 * show the user (it holds nothing the server sent).
 */
export class ImapSessionError extends Error {}

/** The mailbox's host is not one the importer may connect to (host_policy.ts). */
export class HostNotAllowedError extends Error {}
