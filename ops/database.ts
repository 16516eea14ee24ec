/**
 * How the ops tools connect: one connection, notices off, and no named prepared
 * statements, so that a pooler URL works as well as a direct one. Supavisor in
 * transaction mode (port 6543 of a hosted project; port 5432 of a self-hosted install,
 * whose compose file runs it with POOLER_POOL_MODE=transaction) hands each transaction
 * to any server connection, where a statement prepared on another one does not exist.
 * The tools run a handful of queries: preparing them would buy nothing.
 */
import postgres from "postgres";

export function connectOps(url: string): postgres.Sql {
  return postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10, prepare: false });
}
