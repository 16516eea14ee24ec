/**
 * The authorization server's accounts are the IMAP users (local stack only): a user added
 * with `local-stack/imap/dovecot.sh add-user NAME PASSWORD` signs in at the authorization
 * server with the same name and password, and its access tokens carry `email` = NAME, the
 * attribute Dovecot's oauth2 passdb logs in as. The passwd-file is read on each sign-in, so a
 * user added a moment ago can sign in at once.
 */
import { timingSafeEqual } from "node:crypto";

const encoder = new TextEncoder();

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/** The `{PLAIN}` password of `username` in a Dovecot passwd-file, or undefined. */
export function plainPassword(passwdFile: string, username: string): string | undefined {
  for (const line of passwdFile.split("\n")) {
    const [name, password] = line.split(":");
    if (name === username && password?.startsWith("{PLAIN}")) return password.slice(7);
  }
  return undefined;
}

/** Whether the user exists in the passwd-file and the password matches (constant time). */
export async function checkPassword(
  usersFile: string,
  credentials: { username: string; password: string },
): Promise<boolean> {
  let text = "";
  try {
    text = await Deno.readTextFile(usersFile);
  } catch {
    return false;
  }
  // Dovecot lower-cases login names (auth_username_format = %Lu); add-user stores them so.
  const stored = plainPassword(text, credentials.username.toLowerCase());
  const expected = await digest(stored ?? crypto.randomUUID());
  const given = await digest(credentials.password);
  return timingSafeEqual(expected, given) && stored !== undefined;
}
