/**
 * Generates the local stack's keys. The signing secret goes straight into Vault
 * (never through a command line or a file) and into the functions' keyring; the
 * rest is written to the state folder (the stack's .stack/, mode 600):
 *   functions.env      the functions' secrets (what `supabase secrets set` would hold):
 *                      AUTO_SYNC_SIGNING_SECRETS; never a SUPABASE_ name
 *   project.json       the project's own keys (project.ts), from which the gateway
 *                      injects SUPABASE_JWKS, the API keys... as the platform does
 *   jwt_private.jwk    the ES256 key the tests and demo use to mint user tokens
 * Local stack only: a real project's keys come from `supabase secrets set` and Auth.
 */
import postgres from "postgres";
import { generateSecret } from "../functions-shared/wire/standard_webhooks.ts";
import { createProject } from "./project.ts";

const [state, dbUrl] = Deno.args;
if (!state || !dbUrl) throw new Error("Usage: provision_keys.ts <state folder> <database url>");

const signingSecret = generateSecret();
const project = await createProject();

const write = (name: string, text: string) =>
  Deno.writeTextFileSync(`${state}/${name}`, text, { mode: 0o600 });
const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
await sql`select vault.create_secret(${signingSecret}, 'auto_sync_signing_key:local', 'Local stack signing key')`;
await sql.end();
write("project.json", JSON.stringify(project));
write("jwt_private.jwk", JSON.stringify(project.signingKey.privateJwk));
write("functions.env", `AUTO_SYNC_SIGNING_SECRETS=v1,${signingSecret}\n`);
