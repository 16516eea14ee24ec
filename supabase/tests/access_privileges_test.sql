-- pgTAP: who may touch what in signed auto-sync, as the catalog grants it (the same
-- objects called for real: access_api_roles_test.sql).
--
--   anon            nothing: not the auto_sync schema, not the public wrappers
--   authenticated   only public.enable_auto_sync / disable_auto_sync / get_auto_sync and
--                   the mailbox functions, and only for their own rows (auth.uid())
--   service_role    reads the auto_sync tables and calls the functions the Edge
--                   Functions need, but cannot dispatch or sign (only pg_cron does)
--   nobody of them  reads Vault or queues pg_net requests
--
-- One transaction, rolled back.
begin;
\ir support/test_helpers.psql
\ir support/access_objects.psql

select plan(227);

-------------------------------------------------------------------------------
-- Row level security and policies
-------------------------------------------------------------------------------
select is(
  array(select t.name from t_auto_sync_tables t
         where to_regclass('auto_sync.' || t.name) is null order by 1),
  '{}'::text[],
  'auto_sync has its tables (settings, schedules, runs, used_request_ids, folder_state, mailbox_credentials)');

select is(
  array(select c.relname::text from pg_class c
         where c.relnamespace = 'auto_sync'::regnamespace and c.relkind in ('r', 'p')
           and not c.relrowsecurity
         order by 1),
  '{}'::text[],
  'RLS is enabled on every table in schema auto_sync');

select is(
  array(select p.policyname::text from pg_policies p
         where p.schemaname = 'auto_sync'
           and p.roles && array['public', 'anon', 'authenticated']::name[]
         order by 1),
  '{}'::text[],
  'no RLS policy in auto_sync lets anon or authenticated see a row');

-------------------------------------------------------------------------------
-- Schema auto_sync
-------------------------------------------------------------------------------
select is(has_schema_privilege('anon', 'auto_sync', 'usage'), false, 'anon has no usage on schema auto_sync');
select is(has_schema_privilege('authenticated', 'auto_sync', 'usage'), false, 'authenticated has no usage on schema auto_sync');
select is(has_schema_privilege('service_role', 'auto_sync', 'usage'), true, 'service_role has usage on schema auto_sync');
select is(
  has_schema_privilege('anon', 'auto_sync', 'create')
    or has_schema_privilege('authenticated', 'auto_sync', 'create')
    or has_schema_privilege('service_role', 'auto_sync', 'create'),
  false, 'no API role may create objects in schema auto_sync');

-------------------------------------------------------------------------------
-- auto_sync tables: anon and authenticated get nothing; service_role reads only
-------------------------------------------------------------------------------
select is(
  has_table_privilege(r, 'auto_sync.' || t, 'select, insert, update, delete, truncate, references, trigger'),
  false,
  format('%s has no privilege on auto_sync.%s', r, t))
from unnest(array['anon', 'authenticated']) r
cross join (select name from t_auto_sync_tables) n (t);

select is(
  array(select format('%s:%s', r, c.relname) from pg_class c
          cross join unnest(array['anon', 'authenticated']) r
         where c.relnamespace = 'auto_sync'::regnamespace
           and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
           and has_table_privilege(r, c.oid, 'select, insert, update, delete, truncate, references, trigger')
         order by 1),
  '{}'::text[],
  'anon and authenticated have no privilege on any relation in auto_sync (new ones included)');

select is(has_table_privilege('service_role', 'auto_sync.' || t.name, 'select'), t.service_role_select,
          format('service_role %s select auto_sync.%s', case when t.service_role_select then 'may' else 'may not' end, t.name))
from t_auto_sync_tables t;

select is(has_table_privilege('service_role', 'auto_sync.' || t.name, 'insert, update, delete, truncate'), false,
          format('service_role may not write auto_sync.%s directly', t.name))
from t_auto_sync_tables t;

select is(
  array(select c.relname::text from pg_class c
         where c.relnamespace = 'auto_sync'::regnamespace and c.relkind in ('r', 'p')
           and c.relname::text not in (select name from t_auto_sync_tables)
           and has_table_privilege('service_role', c.oid, 'select')
         order by 1),
  '{}'::text[],
  'service_role reads no auto_sync table beyond those listed here (new ones included)');

-------------------------------------------------------------------------------
-- auto_sync functions: privileges
-------------------------------------------------------------------------------
select is(has_function_privilege(r, f.sig, 'execute'), false, format('%s cannot execute %s', r, f.sig))
from unnest(array['anon', 'authenticated']) r
cross join t_auto_sync_functions f;

select is(
  array(select format('%s:%s', r, p.oid::regprocedure) from pg_proc p
          cross join unnest(array['anon', 'authenticated']) r
         where p.pronamespace = 'auto_sync'::regnamespace
           and has_function_privilege(r, p.oid, 'execute')
         order by 1),
  '{}'::text[],
  'anon and authenticated cannot execute any function in auto_sync (new ones included)');

select is(has_function_privilege('service_role', f.sig, 'execute'), f.service_role_may,
          format('service_role %s execute %s', case when f.service_role_may then 'can' else 'cannot' end, f.sig))
from t_auto_sync_functions f;

select is(
  array(select p.oid::regprocedure::text from pg_proc p
         where p.pronamespace = 'auto_sync'::regnamespace
           and not coalesce('search_path=""' = any(p.proconfig), false)
         order by 1),
  '{}'::text[],
  'every auto_sync function pins search_path to ''''');

-------------------------------------------------------------------------------
-- public wrappers: privileges
-------------------------------------------------------------------------------
select is(has_function_privilege('anon', f.sig, 'execute'), false, format('anon cannot execute %s', f.sig))
from t_public_functions f;
select is(has_function_privilege('authenticated', f.sig, 'execute'), true, format('authenticated can execute %s', f.sig))
from t_public_functions f;
select is(
  array(select p.oid::regprocedure::text from pg_proc p
         where p.oid in (select f.sig::regprocedure from t_public_functions f)
           and not (not p.prosecdef and 'search_path=""' = any(p.proconfig))
         order by 1),
  '{}'::text[],
  'the public wrappers are SECURITY INVOKER with search_path ''''');
select is(
  array(select f.sig from t_public_functions f
         where to_regprocedure(replace(f.sig, 'public.', 'auto_sync_user_api.')) is null
            or not exists (select 1 from pg_proc p
                            where p.oid = to_regprocedure(replace(f.sig, 'public.', 'auto_sync_user_api.'))
                              and p.prosecdef and 'search_path=""' = any(p.proconfig)
                              and has_function_privilege('authenticated', p.oid, 'execute')
                              and not has_function_privilege('anon', p.oid, 'execute'))
         order by 1),
  '{}'::text[],
  'each public wrapper calls a SECURITY DEFINER twin in auto_sync_user_api (search_path '''', authenticated only)');
select is(
  array(select p.oid::regprocedure::text from pg_proc p
         where p.pronamespace = 'auto_sync_user_api'::regnamespace
           and p.oid not in (select to_regprocedure(replace(f.sig, 'public.', 'auto_sync_user_api.')) from t_public_functions f)
         order by 1),
  '{}'::text[],
  'auto_sync_user_api holds only the twins of the public wrappers (new ones included)');
select is(has_schema_privilege('anon', 'auto_sync_user_api', 'usage'), false, 'anon cannot use schema auto_sync_user_api');

-- Supabase's Security Advisor (splinter): lints 0028/0029 warn on a SECURITY DEFINER
-- function executable by anon or authenticated in a schema the Data API exposes
-- (config.toml: public, graphql_public); lint 0014 on an extension in public.
select is(
  array(select p.oid::regprocedure::text from pg_proc p
         where p.pronamespace in ('public'::regnamespace, coalesce(to_regnamespace('graphql_public'), 'public'::regnamespace))
           and p.prosecdef
           and (has_function_privilege('anon', p.oid, 'execute') or has_function_privilege('authenticated', p.oid, 'execute'))
         order by 1),
  '{}'::text[],
  'no SECURITY DEFINER function in an exposed schema is executable by anon or authenticated (Advisor 0028/0029)');
select is(
  array(select p.oid::regprocedure::text from pg_proc p
         where p.pronamespace = 'public'::regnamespace and p.prosecdef order by 1),
  '{}'::text[],
  'no SECURITY DEFINER function in public at all');
select is(
  array(select e.extname::text from pg_extension e
         where e.extnamespace = 'public'::regnamespace and e.extname <> 'plpgsql' order by 1),
  '{}'::text[],
  'no extension in public (Advisor 0014); pg_cron is in pg_catalog');
select is((select e.extnamespace::regnamespace::text from pg_extension e where e.extname = 'pg_cron'), 'pg_catalog',
          'pg_cron is created with schema pg_catalog');
select is(
  array(select p.oid::regprocedure::text from pg_proc p
         where p.pronamespace = 'public'::regnamespace and has_function_privilege('anon', p.oid, 'execute')
         order by 1),
  '{}'::text[],
  'anon cannot execute any function in public (new ones included)');
select is(
  array(select p.oid::regprocedure::text from pg_proc p
         where p.pronamespace = 'public'::regnamespace
           and has_function_privilege('authenticated', p.oid, 'execute')
           and p.oid not in (select f.sig::regprocedure from t_public_functions f)
         order by 1),
  '{}'::text[],
  'authenticated can execute no function in public beyond the listed wrappers (new ones included)');

-------------------------------------------------------------------------------
-- public tables (mailboxes, emails): RLS, own rows only, read-only for users
-------------------------------------------------------------------------------
select is(
  array(select c.relname::text from pg_class c
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
           and not c.relrowsecurity
         order by 1),
  '{}'::text[],
  'RLS is enabled on every table in schema public');
select is(
  array(select format('%s:%s:%s', p.tablename, p.cmd, p.roles) from pg_policies p
         where p.schemaname = 'public'
           and (p.cmd <> 'SELECT' or p.roles && array['public', 'anon']::name[]
                or p.qual is null or position('auth.uid()' in p.qual) = 0)
         order by 1),
  '{}'::text[],
  'every policy in public is SELECT-only, not for anon or public, and keyed on auth.uid()');
select is(
  array(select p.tablename::text from pg_policies p where p.schemaname = 'public' order by 1),
  array['emails', 'mailboxes'],
  'public.mailboxes and public.emails each have their one read policy');
select is(has_table_privilege('anon', t, 'select, insert, update, delete, truncate, references, trigger'), false,
          format('anon has no privilege on %s', t))
from unnest(array['public.mailboxes', 'public.emails']) t;
select is(has_table_privilege('authenticated', t, 'select'), true, format('authenticated may select %s (RLS: own rows)', t))
from unnest(array['public.mailboxes', 'public.emails']) t;
select is(has_table_privilege('authenticated', t, 'insert, update, delete, truncate, references, trigger'), false,
          format('authenticated may not write %s directly', t))
from unnest(array['public.mailboxes', 'public.emails']) t;
select is(
  array(select format('%s:%s', r, c.relname) from pg_class c
          cross join unnest(array['anon', 'authenticated']) r
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
           and has_table_privilege(r, c.oid, 'insert, update, delete, truncate, references, trigger')
         order by 1),
  '{}'::text[],
  'anon and authenticated cannot write any relation in public (new ones included)');
select is(
  array(select c.relname::text from pg_class c
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
           and has_table_privilege('anon', c.oid, 'select')
         order by 1),
  '{}'::text[],
  'anon cannot read any relation in public (new ones included)');
-- Supabase's default privileges also grant the API roles every sequence in public;
-- with UPDATE, setval() could push the identity onto existing ids.
select is(
  array(select format('%s:%s', r, c.relname) from pg_class c
          cross join unnest(array['anon', 'authenticated']) r
         where c.relnamespace = 'public'::regnamespace and c.relkind = 'S'
           and has_sequence_privilege(r, c.oid, 'usage, select, update')
         order by 1),
  '{}'::text[],
  'anon and authenticated have no privilege on any sequence in public');

-------------------------------------------------------------------------------
-- Vault and pg_net: privileges
-------------------------------------------------------------------------------
select is(has_schema_privilege(r, s, 'usage'), false, format('%s has no usage on schema %s', r, s))
from unnest(array['anon', 'authenticated', 'service_role']) r
cross join unnest(array['vault', 'net']) s;

select is(has_table_privilege(r, t, 'select, insert, update, delete'), false, format('%s has no privilege on %s', r, t))
from unnest(array['anon', 'authenticated', 'service_role']) r
cross join unnest(array['vault.secrets', 'vault.decrypted_secrets', 'net.http_request_queue']) t;

select is(has_function_privilege(r, f, 'execute'), false, format('%s cannot execute %s', r, f))
from unnest(array['anon', 'authenticated', 'service_role']) r
cross join unnest(array['vault.create_secret(text, text, text, uuid)',
                        'vault.update_secret(uuid, text, text, text, uuid)',
                        'net.http_post(text, jsonb, jsonb, jsonb, integer)']) f;

select * from finish();
rollback;
