/**
 * The functions talk to Postgres directly (SUPABASE_DB_URL, injected into every
 * Edge Function) and only through the narrow auto_sync.* functions. No Data API
 * round trip and no service-role API key: nothing here depends on Supabase's API
 * key formats (legacy JWT keys vs sb_secret_...).
 */
import postgres from "postgres";

export type Sql = postgres.Sql;

/** `dbUrl` is SUPABASE_DB_URL, checked by config.ts. */
export function connectDatabase(dbUrl: string, applicationName: string): Sql {
  return postgres(dbUrl, {
    max: 4,
    idle_timeout: 20,
    connect_timeout: 10,
    prepare: false, // works through Supabase's transaction pooler too
    connection: { application_name: applicationName },
    onnotice: () => {},
  });
}
