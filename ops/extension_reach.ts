/**
 * What the API roles can still use of pg_net (`net`) and Vault (`vault`) on a running
 * database, read with has_schema_privilege / has_function_privilege / has_table_privilege
 * (effective rights: PUBLIC and role membership included), for doctor's report.
 *
 * 20261201100000_net_privileges.sql revokes them, but PostgreSQL skips a revoke of a
 * grant the revoking role did not make: where `postgres` owns neither schema (hosted
 * Supabase and the self-hosted image, whose extensions belong to supabase_admin) the
 * grants stay. This reads what is true, whatever the migration managed.
 */
import type postgres from "postgres";

export const API_ROLES = ["anon", "authenticated", "service_role"] as const;

export interface RoleReach {
  role: string;
  schema: "net" | "vault";
  /** Functions of the schema the role may execute, by name. */
  functions: string[];
  /** Tables and views of the schema with the privileges the role holds on each. */
  tables: { name: string; privileges: string[] }[];
}

/**
 * One entry per API role and schema the role can use: USAGE on the schema and at least
 * one function or table in it (a grant on an object without USAGE on its schema is
 * unusable, and USAGE alone reaches nothing).
 */
export async function extensionReach(sql: postgres.Sql): Promise<RoleReach[]> {
  const rows = await sql`
    with roles as (
      select r.rolname as role from pg_catalog.pg_roles r
       where r.rolname = any(${API_ROLES as unknown as string[]}::text[])
    ), schemas as (
      select n.oid, n.nspname from pg_catalog.pg_namespace n where n.nspname in ('net', 'vault')
    )
    select r.role, s.nspname as schema,
           array(select distinct p.proname::text from pg_catalog.pg_proc p
                  where p.pronamespace = s.oid
                    and pg_catalog.has_function_privilege(r.role, p.oid, 'EXECUTE')
                  order by 1) as functions,
           array(select pg_catalog.jsonb_build_object('name', c.relname::text, 'privileges',
                          array(select k from pg_catalog.unnest(
                                  array['SELECT', 'INSERT', 'UPDATE', 'DELETE']) k
                                 where pg_catalog.has_table_privilege(r.role, c.oid, k)))
                   from pg_catalog.pg_class c
                  where c.relnamespace = s.oid and c.relkind in ('r', 'v', 'p')
                    and pg_catalog.has_table_privilege(r.role, c.oid,
                          'SELECT, INSERT, UPDATE, DELETE')
                  order by c.relname) as tables
      from roles r cross join schemas s
     where pg_catalog.has_schema_privilege(r.role, s.oid, 'USAGE')
     order by array_position(${API_ROLES as unknown as string[]}::text[], r.role::text), s.nspname`;
  return rows
    .map((row) => ({
      role: row.role as string,
      schema: row.schema as "net" | "vault",
      functions: row.functions as string[],
      tables: row.tables as { name: string; privileges: string[] }[],
    }))
    .filter((reach) => reach.functions.length > 0 || reach.tables.length > 0);
}

/** What one role's reach allows, in words (doctor prints one line per role and schema). */
export function describeReach(reach: RoleReach): string {
  const can: string[] = [];
  const sends = reach.functions.filter((name) => /^http_(get|post|put|patch|delete)$/.test(name));
  const table = (name: string) => reach.tables.find((entry) => entry.name === name);
  if (reach.schema === "net") {
    if (sends.length > 0) {
      can.push(`send HTTP requests anywhere from the database (${sends.join(", ")})`);
    }
    const queue = table("http_request_queue");
    if (queue?.privileges.includes("SELECT")) can.push("read queued signed requests");
    if (queue?.privileges.some((privilege) => privilege !== "SELECT")) {
      can.push(`change the request queue (${queue.privileges.join(", ")})`);
    }
    if (table("_http_response")) can.push("read pg_net's responses");
  } else {
    if (table("decrypted_secrets")?.privileges.includes("SELECT")) {
      can.push("read every Vault secret in clear (signing keys, mailbox credentials)");
    }
    const writes = reach.functions.filter((name) => /^(create|update)_secret$/.test(name));
    if (writes.length > 0) can.push(`create or overwrite Vault secrets (${writes.join(", ")})`);
  }
  const objects = [
    ...(reach.functions.length > 0 ? [`${reach.functions.length} function(s)`] : []),
    ...reach.tables.map((entry) => `${reach.schema}.${entry.name} ${entry.privileges.join("/")}`),
  ];
  return `${reach.role} on ${reach.schema}: ${
    can.length > 0 ? `can ${can.join("; ")}` : "holds grants"
  } [${objects.join(", ")}]`;
}
