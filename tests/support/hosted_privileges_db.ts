/**
 * A throwaway database, in the local stack's cluster, where pg_net and Vault stand as on
 * hosted Supabase and its self-hosted image: their objects belong to `supabase_admin` (a
 * superuser), with Supabase's grants made by it (local-stack/supabase_compat.sql, run as
 * supabase_admin), and the project's migration 20261201100000_net_privileges.sql applied
 * by a role that is, like hosted's `postgres`, neither a superuser nor the owner. So
 * PostgreSQL itself skips the migration's revokes, as it does there.
 *
 * (The stack's own `postgres` is the cluster's superuser, for which every revoke applies;
 * pg_cron only runs in the stack's main database, so the full migration set cannot be
 * applied here: only the privileges migration is, verbatim, onto an empty auto_sync schema.)
 */
import { dbPort } from "../../local-stack/urls.ts";

const repo = new URL("../../", import.meta.url).pathname;
const migrationRunner = "hosted_postgres_stand_in";

export interface HostedPrivilegesDb {
  url: string;
  /** psql's output while applying the privileges migration (its WARNINGs). */
  migrationOutput: string;
  drop(): Promise<void>;
}

async function psql(database: string, args: string[]): Promise<string> {
  const output = await new Deno.Command("psql", {
    args: [
      "-X",
      "-v",
      "ON_ERROR_STOP=1",
      "-h",
      "127.0.0.1",
      "-p",
      String(dbPort),
      "-U",
      "postgres",
      "-d",
      database,
      ...args,
    ],
    env: { PGPASSWORD: "postgres" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  if (!output.success) throw new Error(`psql failed on ${database}: ${text}`);
  return text;
}

export async function createHostedPrivilegesDb(): Promise<HostedPrivilegesDb> {
  const database = `hosted_privileges_${Date.now()}`;
  const created = await psql("postgres", [
    "-At",
    "-c",
    `select not exists (select 1 from pg_roles where rolname = 'supabase_admin')`,
  ]);
  const ownAdmin = created.trim() === "t";
  const drop = async () => {
    await psql("postgres", [
      "-c",
      `drop database if exists ${database} with (force)`,
      "-c",
      `drop role if exists ${migrationRunner}`,
      ...(ownAdmin ? ["-c", "drop role if exists supabase_admin"] : []),
    ]);
  };
  try {
    await psql("postgres", [
      ...(ownAdmin ? ["-c", "create role supabase_admin superuser nologin"] : []),
      "-c",
      `create role ${migrationRunner} nologin`,
      "-c",
      `create database ${database} owner supabase_admin`,
    ]);
    // Supabase's side, by the extensions' owner.
    await psql(database, [
      "-c",
      "set role supabase_admin",
      "-f",
      `${repo}local-stack/supabase_compat.sql`,
      "-c",
      "create extension pg_net with schema extensions",
      // What Supabase's Vault after-create script gives `postgres` (supabase/postgres,
      // ansible/files/postgresql_extension_custom_scripts/supabase_vault/after-create.sql),
      // to the stand-in: nothing on _crypto_aead_det_encrypt / _crypto_aead_det_noncegen.
      "-c",
      `grant usage on schema vault to ${migrationRunner} with grant option;
       grant select, delete on vault.secrets, vault.decrypted_secrets to ${migrationRunner} with grant option;
       grant execute on function vault.create_secret, vault.update_secret, vault._crypto_aead_det_decrypt
         to ${migrationRunner} with grant option;
       create schema auto_sync authorization ${migrationRunner};`,
    ]);
    // The project's migration, verbatim, as a role that owns neither net nor vault.
    const migrationOutput = await psql(database, [
      "-c",
      `set role ${migrationRunner}`,
      "-f",
      `${repo}supabase/migrations/20261201100000_net_privileges.sql`,
    ]);
    return {
      url: `postgresql://postgres:postgres@127.0.0.1:${dbPort}/${database}`,
      migrationOutput,
      drop,
    };
  } catch (error) {
    await drop().catch(() => {});
    throw error;
  }
}
