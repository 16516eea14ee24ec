-- Supabase-compat bootstrap for the local stack (tests and demo only; never deployed).
--
-- A hosted Supabase project, or `supabase start`, already has everything in this
-- file. Here it is rebuilt on a plain PostgreSQL 15 so the project's migrations run
-- unchanged: the API roles, the bits of `auth` that policies use, the `extensions`
-- schema, and STAND-INS for Vault (`supabase_vault`) and pg_net that expose the same
-- SQL API as the real extensions. The pg_net stand-in only queues requests; the
-- worker in local-stack/net_worker.ts sends them, as pg_net's background worker does.
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
-- stand-in keeps that default so our tests see the same trap.
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
-- Vault STAND-IN. Same objects and signatures as `supabase_vault`:
--   vault.secrets, vault.decrypted_secrets,
--   vault.create_secret(new_secret, new_name, new_description, new_key_id) -> uuid,
--   vault.update_secret(secret_id, new_secret, new_name, new_description, new_key_id).
-- Real Vault encrypts with a root key kept outside the database (pgsodium / the
-- server's key file). The stand-in does the same with pgcrypto and a random root key
-- in a file of the cluster's data directory (`vault_stand_in_root.key`, written by
-- scripts/stack), which only a superuser can read. As in real Vault, only `postgres`
-- may read `vault.decrypted_secrets`; the API roles get nothing.
---------------------------------------------------------------------------------
create schema if not exists vault;
revoke all on schema vault from public;

create table if not exists vault.secrets (
  id uuid primary key default gen_random_uuid(),
  name text,
  description text not null default '',
  secret text not null,
  key_id uuid,
  nonce bytea,
  created_at timestamptz not null default current_timestamp,
  updated_at timestamptz not null default current_timestamp
);
create unique index if not exists secrets_name_idx on vault.secrets (name) where name is not null;
revoke all on vault.secrets from public;

create or replace function vault._stand_in_root_key() returns text
language sql stable security definer set search_path = ''
as $$ select pg_catalog.btrim(pg_catalog.pg_read_file('vault_stand_in_root.key'), E' \n') $$;
revoke all on function vault._stand_in_root_key() from public;

create or replace function vault._encrypt(p_plaintext text) returns text
language sql volatile security definer set search_path = ''
as $$
  select pg_catalog.translate(
    pg_catalog.encode(extensions.pgp_sym_encrypt(p_plaintext, vault._stand_in_root_key()), 'base64'),
    E'\n', '')
$$;
revoke all on function vault._encrypt(text) from public;

create or replace function vault._decrypt(p_ciphertext text) returns text
language sql stable security definer set search_path = ''
as $$
  select extensions.pgp_sym_decrypt(pg_catalog.decode(p_ciphertext, 'base64'), vault._stand_in_root_key())
$$;
revoke all on function vault._decrypt(text) from public;

create or replace view vault.decrypted_secrets as
  select id, name, description, secret, vault._decrypt(secret) as decrypted_secret,
         key_id, nonce, created_at, updated_at
  from vault.secrets;
revoke all on vault.decrypted_secrets from public;

create or replace function vault.create_secret(
  new_secret text,
  new_name text default null,
  new_description text default '',
  new_key_id uuid default null
) returns uuid
language sql volatile security definer set search_path = ''
as $$
  insert into vault.secrets (secret, name, description, key_id)
  values (vault._encrypt(new_secret), new_name, coalesce(new_description, ''), new_key_id)
  returning id
$$;

create or replace function vault.update_secret(
  secret_id uuid,
  new_secret text default null,
  new_name text default null,
  new_description text default null,
  new_key_id uuid default null
) returns void
language sql volatile security definer set search_path = ''
as $$
  update vault.secrets
     set secret = coalesce(vault._encrypt(new_secret), secret),
         name = coalesce(new_name, name),
         description = coalesce(new_description, description),
         key_id = coalesce(new_key_id, key_id),
         updated_at = now()
   where id = secret_id
$$;
revoke all on function vault.create_secret(text, text, text, uuid) from public;
revoke all on function vault.update_secret(uuid, text, text, text, uuid) from public;

---------------------------------------------------------------------------------
-- pg_net STAND-IN. Same objects and signatures as pg_net 0.x:
--   net.http_post(url, body jsonb, params jsonb, headers jsonb, timeout_milliseconds)
--     -> bigint request id; the body is stored as convert_to(body::text, 'UTF8'),
--   net.http_request_queue (unlogged), net._http_response (unlogged).
-- The worker (local-stack/net_worker.ts) removes a request from the queue, sends it
-- with its timeout and records the response under the same id, like pg_net.
---------------------------------------------------------------------------------
create schema if not exists net;
revoke all on schema net from public;

create unlogged table if not exists net.http_request_queue (
  id bigserial primary key,
  method text not null,
  url text not null,
  headers jsonb not null,
  body bytea,
  timeout_milliseconds integer not null
);

create unlogged table if not exists net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out boolean,
  error_msg text,
  created timestamptz not null default now()
);
create index if not exists _http_response_created_idx on net._http_response (created);

create or replace function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_query text;
  v_id bigint;
begin
  select pg_catalog.string_agg(pg_catalog.format('%s=%s', key, value), '&')
    into v_query
    from jsonb_each_text(params);
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values (
    'POST',
    case when v_query is null then url else url || '?' || v_query end,
    headers,
    pg_catalog.convert_to(body::text, 'UTF8'),
    timeout_milliseconds
  )
  returning id into v_id;
  perform pg_catalog.pg_notify('net_stand_in_queue', v_id::text);
  return v_id;
end
$$;
revoke all on function net.http_post(text, jsonb, jsonb, jsonb, integer) from public;
