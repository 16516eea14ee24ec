-- Who may queue HTTP requests and read Vault: only `postgres` (dispatch(), the importer).
--
-- Real pg_net grants USAGE on schema `net`, ALL on its queue and response tables and
-- its id sequence, to PUBLIC, and leaves its functions (http_post included) executable
-- by PUBLIC; Supabase's `issue_pg_net_access` event trigger also grants USAGE on `net`
-- to anon, authenticated and service_role. The queue holds live signed requests, and
-- http_post sends anything anywhere. Supabase's Vault set-up grants service_role
-- read access to vault.decrypted_secrets (our signing keys and IMAP credentials).
--
-- This migration first grants `postgres` explicitly what our functions and pg_net's
-- worker need (on Supabase they had it only through PUBLIC), then revokes the rest
-- from PUBLIC and the API roles. Where the objects belong to another role and the
-- migration runs without superuser rights (hosted Supabase and the self-hosted image:
-- the extensions belong to supabase_admin), PostgreSQL skips each revoke with a warning,
-- or refuses it outright on an object the role holds no privilege on (each statement
-- runs alone, so that stops nothing); the migration then lists what is still granted
-- (auto_sync.extension_privileges_left()) as a WARNING. `deno task doctor` reports what
-- each API role can still use (ops/extension_reach.ts).
-- SECURITY.md, "pg_net and Vault privileges", says what that leaves and why it is not
-- reachable through the Data API.

-- What is left for roles other than postgres (and Supabase's internal
-- supabase_functions_admin) on `net` and `vault`: one line per privilege.
create or replace function auto_sync.extension_privileges_left()
returns setof text
language sql stable
set search_path = ''
as $$
  with grantees as (
    select 0::oid as oid, 'PUBLIC' as name
    union all
    select r.oid, r.rolname from pg_catalog.pg_roles r
     where r.rolname in ('anon', 'authenticated', 'service_role')
  ), objects as (
    select 'schema ' || n.nspname as object, n.nspacl as acl
      from pg_catalog.pg_namespace n where n.nspname in ('net', 'vault')
    union all
    select case c.relkind when 'S' then 'sequence ' else 'table ' end
             || n.nspname || '.' || c.relname, c.relacl
      from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where n.nspname in ('net', 'vault') and c.relkind in ('r', 'v', 'S', 'p')
    union all
    select 'function ' || p.oid::pg_catalog.regprocedure::text,
           coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))
      from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where n.nspname in ('net', 'vault')
  )
  select pg_catalog.format('%s: %s on %s', g.name, a.privilege_type, o.object)
    from objects o
   cross join lateral pg_catalog.aclexplode(o.acl) a
    join grantees g on g.oid = a.grantee
   order by 1
$$;
comment on function auto_sync.extension_privileges_left() is
  'Privileges PUBLIC, anon, authenticated or service_role still hold on pg_net''s and Vault''s objects (see SECURITY.md). Empty when locked down.';
revoke all on function auto_sync.extension_privileges_left() from public, anon, authenticated, service_role;

do $$
declare
  v_left text;
  v_statement text;
  v_refused text[] := '{}';
begin
  -- Each statement on one object, alone: where the running role holds no privilege at
  -- all on an object, PostgreSQL refuses its GRANT or REVOKE outright (insufficient
  -- privilege) instead of skipping it with a warning. On hosted Supabase, postgres holds
  -- nothing on Vault's internal _crypto_aead_det_encrypt / _crypto_aead_det_noncegen (its
  -- after-create script grants only create_secret, update_secret, _crypto_aead_det_decrypt),
  -- so one statement on "all functions in schema vault" would stop the whole migration.
  for v_statement in
    with objects as (
      select 'schema' as kind, pg_catalog.format('%I', n.nspname) as name, n.nspname as schema
        from pg_catalog.pg_namespace n where n.nspname in ('net', 'vault')
      union all
      select case c.relkind when 'S' then 'sequence' else 'table' end,
             pg_catalog.format('%I.%I', n.nspname, c.relname), n.nspname
        from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
       where n.nspname in ('net', 'vault') and c.relkind in ('r', 'v', 'p', 'S')
      union all
      select 'function', pg_catalog.format('%I.%I(%s)', n.nspname, p.proname,
                                            pg_catalog.pg_get_function_identity_arguments(p.oid)),
             n.nspname
        from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
       where n.nspname in ('net', 'vault')
    )
    -- What `postgres` needs on net, granted by name before PUBLIC loses it: dispatch()
    -- queues (insert + the id sequence, http_post), reconcile_runs() and purge_history()
    -- read and delete responses, and the worker (as postgres on Supabase) works the queue.
    -- (Vault: only postgres reads secrets, the functions connect as postgres; Supabase
    -- grants it by name already.)
    select statement from (
      select 1 as step, pg_catalog.format('grant %s on %s %s to postgres',
               case kind when 'schema' then 'usage' when 'function' then 'execute' else 'all' end,
               kind, name) as statement
        from objects where schema = 'net'
      union all
      select 2, pg_catalog.format('revoke all on %s %s from public, anon, authenticated, service_role',
               kind, name)
        from objects
    ) statements
    order by step
  loop
    begin
      execute v_statement;
    exception when insufficient_privilege then
      v_refused := v_refused || v_statement;
    end;
  end loop;

  if pg_catalog.cardinality(v_refused) > 0 then
    raise warning 'pg_net/Vault statements refused, this role holds no privilege on their object:%',
      E'\n  ' || pg_catalog.array_to_string(v_refused, E'\n  ');
  end if;
  select pg_catalog.string_agg(l, E'\n  ') into v_left from auto_sync.extension_privileges_left() l;
  if v_left is not null then
    raise warning 'pg_net/Vault privileges this role could not revoke (see SECURITY.md):%',
      E'\n  ' || v_left;
  end if;
end
$$;
