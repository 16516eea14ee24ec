import assert from "node:assert/strict";
import { authError, CREDENTIAL, mailbox } from "../../tests/support/import_fakes.ts";
import { describeImportError } from "./import_error.ts";
import { HostNotAllowedError, ImapSessionError } from "./session_errors.ts";

const MAILBOX_1 = "11111111-1111-4111-8111-111111111111";

// --- describeImportError (moved from import_run_test.ts) --------------------------------------------------------------

Deno.test("describeImportError: a refused login names the user, host and kind of secret", () => {
  const password = describeImportError(
    authError(`LOGIN ${CREDENTIAL} rejected`),
    mailbox(MAILBOX_1),
    CREDENTIAL,
  );
  assert.deepEqual(password, {
    text:
      'Login failed for "alice@example.test" at imap.example.test: the server refused the password',
    authFailed: true,
  });
  const token = describeImportError(
    authError("AUTHENTICATE XOAUTH2 failed"),
    mailbox(MAILBOX_1, { auth_kind: "oauth2" }),
    CREDENTIAL,
  );
  assert.equal(
    token.text,
    'Login failed for "alice@example.test" at imap.example.test: the server refused the access token',
  );
  assert.equal(token.authFailed, true);
});

Deno.test("describeImportError: unreachable servers say which host and port, without code or address", () => {
  for (
    const code of ["ECONNREFUSED", "ENOTFOUND", "ETIMEDOUT", "CONNECT_TIMEOUT", "EHOSTUNREACH"]
  ) {
    const error = Object.assign(new Error(`connect ${code} 10.0.0.1:993 ${CREDENTIAL}`), { code });
    const described = describeImportError(error, mailbox(MAILBOX_1, { port: 143 }), CREDENTIAL);
    assert.deepEqual(described, {
      text: 'Cannot connect to the mail server "imap.example.test:143"',
      authFailed: false,
    });
  }
});

Deno.test("describeImportError: a connection lost mid-run says so, without the detail", () => {
  for (const code of ["ECONNRESET", "NoConnection", "EConnectionClosed", "ETIMEOUT"]) {
    const error = Object.assign(new Error(`Socket closed 10.0.0.1:993 ${code}`), { code });
    assert.equal(
      describeImportError(error, mailbox(MAILBOX_1), CREDENTIAL).text,
      'The connection to the mail server "imap.example.test:993" was lost',
    );
  }
});

Deno.test("describeImportError: a refused private host reads like any unreachable one (no resolved address)", () => {
  const refused = new HostNotAllowedError(
    "Refusing to connect to imap.example.test: 10.1.2.3 is a loopback, private or link-local address",
  );
  const described = describeImportError(refused, mailbox(MAILBOX_1), CREDENTIAL);
  assert.equal(described.text, 'Cannot connect to the mail server "imap.example.test:993"');
  assert.ok(!described.text.includes("10.1.2.3"));
});

Deno.test("describeImportError: certificate errors say the certificate is not trusted, without the detail", () => {
  for (
    const code of [
      "SELF_SIGNED_CERT_IN_CHAIN",
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      "ERR_TLS_CERT_ALTNAME_INVALID",
      "CERT_HAS_EXPIRED",
    ]
  ) {
    const error = Object.assign(new Error(`certificate problem ${CREDENTIAL}`), { code });
    const described = describeImportError(error, mailbox(MAILBOX_1), CREDENTIAL);
    assert.equal(described.text, "The TLS certificate of imap.example.test is not trusted");
    assert.equal(described.authFailed, false);
  }
});

Deno.test("describeImportError: the session's own errors are shown with the server named", () => {
  assert.equal(
    describeImportError(
      new ImapSessionError("The mail server sent an invalid UIDVALIDITY"),
      mailbox(MAILBOX_1),
      CREDENTIAL,
    ).text,
    'The mail server sent an invalid UIDVALIDITY ("imap.example.test:993")',
  );
});

Deno.test("describeImportError: no control character of the server's text survives (terminal escapes)", () => {
  const error = Object.assign(new Error("Command failed\u0007"), {
    responseText: "NO \u001b]0;pwned\u0007\u001b[2J\u009b31m wiped\r\ninjected line",
  });
  const described = describeImportError(error, mailbox(MAILBOX_1), CREDENTIAL);
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(described.text, /[\u0000-\u001f\u007f-\u009f]/);
  assert.match(described.text, /^IMAP error at imap\.example\.test: Command failed/);
  assert.match(described.text, /wiped/);
});

Deno.test("describeImportError: other errors keep the message and the server's response, scrubbed", () => {
  const error = Object.assign(new Error(`Command failed ${CREDENTIAL}`), {
    responseText: `NO [ALERT] bad password ${CREDENTIAL}`,
  });
  const described = describeImportError(error, mailbox(MAILBOX_1), CREDENTIAL);
  assert.equal(
    described.text,
    "IMAP error at imap.example.test: Command failed [redacted]: NO [ALERT] bad password [redacted]",
  );
  assert.equal(described.authFailed, false);
  // A thrown non-Error and a null credential do not break it.
  assert.equal(
    describeImportError("socket hang up", mailbox(MAILBOX_1), null).text,
    "IMAP error at imap.example.test: socket hang up",
  );
  assert.equal(
    describeImportError(undefined, mailbox(MAILBOX_1), null).text,
    "IMAP error at imap.example.test: undefined",
  );
});

Deno.test("describeImportError: the credential is scrubbed from every kind of text, and texts are bounded", () => {
  const errors: unknown[] = [
    authError(CREDENTIAL),
    Object.assign(new Error(CREDENTIAL), { code: "ECONNREFUSED" }),
    Object.assign(new Error(CREDENTIAL), { code: "CERT_HAS_EXPIRED" }),
    new Error(`${CREDENTIAL}\nsecond line ${CREDENTIAL}`),
    Object.assign(new Error("x"), { responseText: CREDENTIAL.repeat(100) }),
  ];
  for (const error of errors) {
    // Even a user name that contains the credential is scrubbed.
    const box = mailbox(MAILBOX_1, { username: `user-${CREDENTIAL}` });
    const described = describeImportError(error, box, CREDENTIAL);
    assert.ok(!described.text.includes(CREDENTIAL), described.text);
    assert.ok(described.text.length <= 500, `${described.text.length} characters`);
  }
});

// A credential straddling a length cut must not survive in part.
Deno.test({
  name: "describeImportError: a credential at a length cut is scrubbed too",
  fn: () => {
    const error = new Error(`${"x".repeat(290)}${CREDENTIAL}`);
    const described = describeImportError(error, mailbox(MAILBOX_1), CREDENTIAL);
    assert.ok(!described.text.includes(CREDENTIAL.slice(0, 8)), described.text);
  },
});
