-- Supabase-compat bootstrap for the local stack (tests and demo only; never deployed).
--
-- A hosted Supabase project, or `supabase start`, already has everything in this
-- file. Here it is rebuilt on a plain PostgreSQL 15 so the project's migrations run
-- unchanged: the API roles, the bits of `auth` that policies use, the `extensions`
-- schema, and what Supabase grants on the real Vault, pg_net and pg_cron (built from
-- local-stack/vendor/ and preloaded by scripts/stack), so privilege tests see a hosted
-- project's starting point. Sources of each grant are cited beside it (supabase/postgres).
--
-- Loaded once into a fresh database, as the superuser `postgres`.

\set ON_ERROR_STOP on

-- Roles the Data API switches to (same attributes as on Supabase).
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
end
$$;
grant anon, authenticated, service_role to authenticator;

-- Supabase grants the API roles everything in `public` by default, functions
-- included. Migrations must therefore revoke what they do not mean to expose; the
-- bootstrap keeps that default so our tests see the same trap.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;

create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;

-- auth: the users table and the helpers RLS policies call.
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
  id uuid primary key,
  aud varchar(255) default 'authenticated',
  role varchar(255) default 'authenticated',
  email varchar(255) unique,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- PostgREST sets `request.jwt.claims` to the verified token's claims per request.
create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role() to anon, authenticated, service_role;

---------------------------------------------------------------------------------
-- Vault: every Supabase project has supabase_vault installed, with the grants of
-- Supabase's after-create script for it (supabase/postgres,
-- ansible/files/postgresql_extension_custom_scripts/supabase_vault/after-create.sql;
-- migrations/db/migrations/20221207154255_create_vault.sql): `postgres` may manage
-- secrets, and so may `service_role` (kept from Vault <= 0.2.8). The extension itself
-- gives the API roles nothing. Its root key comes from vault.getkey_script (scripts/stack).
---------------------------------------------------------------------------------
create extension if not exists supabase_vault;
grant usage on schema vault to postgres, service_role;
grant select, delete on vault.secrets, vault.decrypted_secrets to postgres, service_role;
grant execute on function vault.create_secret, vault.update_secret, vault._crypto_aead_det_decrypt
  to postgres, service_role;

---------------------------------------------------------------------------------
-- pg_net: a project enables it with `create extension pg_net` (our first migration
-- does). Supabase's event trigger `issue_pg_net_access` then grants USAGE on `net` to
-- the API roles (supabase/postgres, migrations/db/migrations/20250220051611_pg_net_perms_fix.sql,
-- extensions.grant_pg_net_access; for pg_net >= 0.12 that is all it does). pg_net itself
-- grants USAGE on `net` and ALL on its tables and sequence to PUBLIC, and leaves its
-- functions executable by PUBLIC.
---------------------------------------------------------------------------------
create or replace function extensions.grant_pg_net_access() returns event_trigger
language plpgsql
as $$
begin
  if exists (select 1 from pg_event_trigger_ddl_commands() c
               join pg_extension e on e.oid = c.objid
              where e.extname = 'pg_net') then
    if not exists (select 1 from pg_roles where rolname = 'supabase_functions_admin') then
      create role supabase_functions_admin noinherit createrole login noreplication;
    end if;
    grant usage on schema net to supabase_functions_admin, postgres, anon, authenticated, service_role;
  end if;
end
$$;
drop event trigger if exists issue_pg_net_access;
create event trigger issue_pg_net_access on ddl_command_end when tag in ('CREATE EXTENSION')
  execute function extensions.grant_pg_net_access();

---------------------------------------------------------------------------------
-- pg_cron: Supabase's after-create script gives `postgres` the cron schema, its
-- functions and tables, but only SELECT on cron.job (supabase/postgres,
-- ansible/files/postgresql_extension_custom_scripts/pg_cron/after-create.sql and
-- migrations/db/migrations/20231020085357_revoke_writes_on_cron_job_from_postgres.sql).
-- Nothing for the API roles beyond what pg_cron grants PUBLIC (SELECT on cron.job,
-- whose row-level security shows each role only its own jobs, and on job_run_details).
---------------------------------------------------------------------------------
create or replace function extensions.grant_pg_cron_access() returns event_trigger
language plpgsql
as $$
begin
  if exists (select 1 from pg_event_trigger_ddl_commands() c
               join pg_extension e on e.oid = c.objid
              where e.extname = 'pg_cron') then
    grant usage on schema cron to postgres with grant option;
    grant all on all functions in schema cron to postgres with grant option;
    grant all privileges on all tables in schema cron to postgres with grant option;
    revoke all on table cron.job from postgres;
    grant select on table cron.job to postgres with grant option;
  end if;
end
$$;
drop event trigger if exists issue_pg_cron_access;
create event trigger issue_pg_cron_access on ddl_command_end when tag in ('CREATE EXTENSION')
  execute function extensions.grant_pg_cron_access();
