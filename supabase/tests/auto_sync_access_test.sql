-- pgTAP: who may touch what in signed auto-sync.
--
--   anon            nothing: not the auto_sync schema, not the public wrappers
--   authenticated   only public.enable_auto_sync / disable_auto_sync / get_auto_sync,
--                   and only for their own schedule (auth.uid())
--   service_role    reads the auto_sync tables and calls the functions the Edge
--                   Functions need, but cannot dispatch or sign (only pg_cron does)
--   nobody of them  reads Vault or queues pg_net requests
--
-- The mail import objects (mailboxes, emails, credentials in Vault) are covered here for
-- who may touch them; what they do is in mail_import_test.sql.
--
-- Runs inside one transaction that is rolled back: pg_cron and the pg_net worker never
-- see the rows created here, and nothing is left behind.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = extensions, public;

select plan(277);

-- Users of this file (fixed ids; rolled back at the end).
insert into auth.users (id, email) values
  ('a11ce000-0000-4000-8000-00000000000a', 'pgtap-access-a@example.test'),
  ('b0b00000-0000-4000-8000-00000000000b', 'pgtap-access-b@example.test'),
  ('c0c00000-0000-4000-8000-00000000000c', 'pgtap-access-c@example.test');

-- The objects under test, by exact signature.
create temp table t_auto_sync_functions (sig text primary key, service_role_may boolean not null)
  on commit drop;
insert into t_auto_sync_functions values
  ('auto_sync.enable(uuid, interval)',                 true),
  ('auto_sync.disable(uuid)',                          true),
  ('auto_sync.accept_request(text, uuid, uuid)',       true),
  ('auto_sync.request_manual_run(uuid, interval)',    true),
  ('auto_sync.start_run(uuid, timestamptz)',           true),
  ('auto_sync.finish_run(uuid, text, text, jsonb)',    true),
  ('auto_sync.dispatch()',                             false),
  ('auto_sync.signing_keys()',                         false),
  ('auto_sync.sign(text, bigint, text, bytea[])',      false),
  ('auto_sync.signing_key_bytes(text)',                false),
  ('auto_sync.request_claims(uuid, uuid, bigint, bigint)', false),
  ('auto_sync.wire_limit(text)',                       true),
  ('auto_sync.send_requests(auto_sync.settings, bytea[], bigint, uuid)', false),
  ('auto_sync.response_window(timestamptz, interval)', false),
  -- mail import (20261129130200_mail_importer.sql, 20261129130000_mail_import_tables.sql):
  -- the importer connects as postgres, so not even service_role may call these
  ('auto_sync.import_targets(uuid)',                                            false),
  ('auto_sync.mailbox_credential(uuid)',                                        false),
  ('auto_sync.claim_mailbox(uuid, uuid, interval)',                             false),
  ('auto_sync.release_mailbox(uuid, uuid)',                                     false),
  ('auto_sync.folder_states(uuid)',                                             false),
  ('auto_sync.reset_folder(uuid, text, bigint)',                                false),
  ('auto_sync.store_batch(uuid, text, bigint, jsonb, bigint, numeric, integer, text[])', false),
  ('auto_sync.touch_folder(uuid, text, bigint, numeric, integer)',              false),
  ('auto_sync.record_mailbox_outcome(uuid, text, boolean)',                     false),
  ('auto_sync.delete_mailbox_secret()',                                         false);
grant select on t_auto_sync_functions to public;

-- The auto_sync tables and whether service_role may read each one.
create temp table t_auto_sync_tables (name text primary key, service_role_select boolean not null)
  on commit drop;
insert into t_auto_sync_tables values
  ('settings', true), ('schedules', true), ('runs', true), ('used_request_ids', true),
  ('folder_state', true),
  ('mailbox_credentials', false);  -- which Vault secret is whose: postgres only
grant select on t_auto_sync_tables to public;

-- The public functions: the auto-sync wrappers and the mailbox functions.
create temp table t_public_functions (sig text primary key) on commit drop;
insert into t_public_functions values
  ('public.enable_auto_sync(interval)'), ('public.disable_auto_sync()'), ('public.get_auto_sync()'),
  ('public.add_mailbox(text, integer, text, text, text, text, text[], text)'),
  ('public.update_mailbox(uuid, text, integer, text, text, text, text[], boolean, text, text)'),
  ('public.remove_mailbox(uuid)');
grant select on t_public_functions to public;

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

-------------------------------------------------------------------------------
-- anon, for real
-------------------------------------------------------------------------------
set local role anon;
-- as anon
set local request.jwt.claims to '{"role":"anon"}';

select throws_ok(format('select * from auto_sync.%I', t.name), '42501', 'permission denied for schema auto_sync',
                 format('anon cannot select auto_sync.%s', t.name))
from t_auto_sync_tables t;

select throws_ok(q, '42501', 'permission denied for schema auto_sync', format('anon cannot call %s', q))
from unnest(array[
  $$select auto_sync.enable('a11ce000-0000-4000-8000-00000000000a', '10 minutes')$$,
  $$select auto_sync.disable('a11ce000-0000-4000-8000-00000000000a')$$,
  $$select auto_sync.dispatch()$$,
  $$select auto_sync.signing_keys()$$,
  $$select auto_sync.sign('id', 1, '{}', array['\x00'::bytea])$$,
  $$select auto_sync.accept_request('req', gen_random_uuid(), 'a11ce000-0000-4000-8000-00000000000a')$$,
  $$select * from auto_sync.request_manual_run('a11ce000-0000-4000-8000-00000000000a')$$,
  $$select auto_sync.start_run(gen_random_uuid())$$,
  $$select auto_sync.finish_run(gen_random_uuid(), 'succeeded')$$,
  $$select * from auto_sync.import_targets('a11ce000-0000-4000-8000-00000000000a')$$,
  $$select auto_sync.mailbox_credential(gen_random_uuid())$$,
  $$select auto_sync.claim_mailbox(gen_random_uuid(), gen_random_uuid(), '1 minute')$$,
  $$select auto_sync.release_mailbox(gen_random_uuid(), gen_random_uuid())$$,
  $$select * from auto_sync.folder_states(gen_random_uuid())$$,
  $$select auto_sync.reset_folder(gen_random_uuid(), 'INBOX', 1)$$,
  $$select * from auto_sync.store_batch(gen_random_uuid(), 'INBOX', 1, '[]', 0)$$,
  $$select auto_sync.touch_folder(gen_random_uuid(), 'INBOX', 1, null, null)$$,
  $$select auto_sync.record_mailbox_outcome(gen_random_uuid(), null, false)$$
]) q;

select throws_ok($$select * from public.enable_auto_sync('10 minutes')$$, '42501',
                 'permission denied for function enable_auto_sync', 'anon cannot call public.enable_auto_sync');
select throws_ok($$select public.disable_auto_sync()$$, '42501',
                 'permission denied for function disable_auto_sync', 'anon cannot call public.disable_auto_sync');
select throws_ok($$select * from public.get_auto_sync()$$, '42501',
                 'permission denied for function get_auto_sync', 'anon cannot call public.get_auto_sync');
select throws_ok($$select public.add_mailbox('imap.example.test', 993, 'anon', 'secret')$$, '42501',
                 'permission denied for function add_mailbox', 'anon cannot call public.add_mailbox');
select throws_ok($$select public.update_mailbox(gen_random_uuid(), p_credential => 'secret')$$, '42501',
                 'permission denied for function update_mailbox', 'anon cannot call public.update_mailbox');
select throws_ok($$select public.remove_mailbox(gen_random_uuid())$$, '42501',
                 'permission denied for function remove_mailbox', 'anon cannot call public.remove_mailbox');
select throws_ok(format('select * from public.%I', t), '42501', format('permission denied for table %s', t),
                 format('anon cannot select public.%s', t))
from unnest(array['mailboxes', 'emails']) t;

select throws_ok(q, '42501', null, format('anon: %s is refused', q))
from unnest(array[
  $$select * from vault.secrets$$,
  $$select * from vault.decrypted_secrets$$,
  $$select vault.create_secret('whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'auto_sync_signing_key:evil')$$,
  $$select * from net.http_request_queue$$,
  $$select net.http_post('https://example.com/', '{}'::jsonb)$$
]) q;
reset role;

-------------------------------------------------------------------------------
-- authenticated: the owner and another user
-------------------------------------------------------------------------------
-- No sub claim: signed in as nobody.
set local role authenticated;
-- as authenticated, no sub
set local request.jwt.claims to '{"role":"authenticated"}';

select throws_ok($$select * from public.enable_auto_sync('10 minutes')$$, '42501',
                 'Cannot enable auto-sync: not signed in', 'enable_auto_sync without a sub claim is refused (42501)');
select throws_ok($$select public.disable_auto_sync()$$, '42501',
                 'Cannot disable auto-sync: not signed in', 'disable_auto_sync without a sub claim is refused (42501)');
select is((select count(*) from public.get_auto_sync()), 0::bigint, 'get_auto_sync without a sub claim returns no row');

-- User A, the owner.
-- as authenticated user A
set local request.jwt.claims to '{"sub":"a11ce000-0000-4000-8000-00000000000a","role":"authenticated"}';

select throws_ok(format('select * from auto_sync.%I', t.name), '42501', 'permission denied for schema auto_sync',
                 format('authenticated cannot select auto_sync.%s, not even their own row', t.name))
from t_auto_sync_tables t;

select throws_ok(q, '42501', 'permission denied for schema auto_sync', format('authenticated cannot call %s', q))
from unnest(array[
  $$select auto_sync.enable('a11ce000-0000-4000-8000-00000000000a', '1 minute')$$,
  $$select auto_sync.disable('b0b00000-0000-4000-8000-00000000000b')$$,
  $$select auto_sync.dispatch()$$,
  $$select auto_sync.signing_keys()$$,
  $$select auto_sync.sign('id', 1, '{}', array['\x00'::bytea])$$,
  $$select auto_sync.accept_request('req', gen_random_uuid(), 'a11ce000-0000-4000-8000-00000000000a')$$,
  $$select * from auto_sync.request_manual_run('a11ce000-0000-4000-8000-00000000000a')$$,
  $$select auto_sync.start_run(gen_random_uuid())$$,
  $$select auto_sync.finish_run(gen_random_uuid(), 'succeeded')$$,
  $$select * from auto_sync.import_targets('a11ce000-0000-4000-8000-00000000000a')$$,
  $$select auto_sync.mailbox_credential(gen_random_uuid())$$,
  $$select auto_sync.claim_mailbox(gen_random_uuid(), gen_random_uuid(), '1 minute')$$,
  $$select auto_sync.release_mailbox(gen_random_uuid(), gen_random_uuid())$$,
  $$select * from auto_sync.folder_states(gen_random_uuid())$$,
  $$select auto_sync.reset_folder(gen_random_uuid(), 'INBOX', 1)$$,
  $$select * from auto_sync.store_batch(gen_random_uuid(), 'INBOX', 1, '[]', 0)$$,
  $$select auto_sync.touch_folder(gen_random_uuid(), 'INBOX', 1, null, null)$$,
  $$select auto_sync.record_mailbox_outcome(gen_random_uuid(), null, false)$$
]) q;

select throws_ok(q, '42501', null, format('authenticated: %s is refused', q))
from unnest(array[
  $$select * from vault.secrets$$,
  $$select * from vault.decrypted_secrets$$,
  $$select vault.create_secret('whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'auto_sync_signing_key:evil')$$,
  $$select * from net.http_request_queue$$,
  $$select net.http_post('https://example.com/', '{}'::jsonb)$$
]) q;

select is((select count(*) from public.get_auto_sync()), 0::bigint, 'A: no schedule before enabling');
select throws_ok($$select * from public.enable_auto_sync('4 minutes')$$, '22023',
                 'Cannot enable auto-sync: interval "00:04:00" is shorter than 5 minutes',
                 'A: an interval under 5 minutes is refused (22023)');
select throws_ok($$select * from public.enable_auto_sync(null)$$, '22023', null,
                 'A: a null interval is refused (22023)');
select throws_ok($$select * from public.enable_auto_sync('300000 years')$$, '22023',
                 'Cannot enable auto-sync: interval "300000 years" is longer than 30 days',
                 'A: an interval over 30 days is refused (22023): it would overflow every tick''s dispatch()');
select is(
  (select format('%s|%s|%s', e.enabled, e.every, e.next_run_at = now()) from public.enable_auto_sync('10 minutes') e),
  't|00:10:00|t',
  'A: enable_auto_sync(10 minutes) returns enabled, the interval, and due now');
select is(
  (select format('%s|%s|%s', g.enabled, g.every, g.last_outcome) from public.get_auto_sync() g),
  't|00:10:00|',
  'A: get_auto_sync shows A''s own schedule');

-- User B, another user.
-- as authenticated user B
set local request.jwt.claims to '{"sub":"b0b00000-0000-4000-8000-00000000000b","role":"authenticated"}';

select is((select count(*) from public.get_auto_sync()), 0::bigint, 'B: get_auto_sync does not return A''s schedule');
select is(public.disable_auto_sync(), false, 'B: disable_auto_sync returns false (B has no schedule)');
select is(
  (select format('%s|%s', e.enabled, e.every) from public.enable_auto_sync('5 minutes') e),
  't|00:05:00',
  'B: 5 minutes, the minimum, is accepted');
select is(
  (select format('%s|%s', g.enabled, g.every) from public.get_auto_sync() g),
  't|00:05:00',
  'B: get_auto_sync shows only B''s schedule');
select is(public.disable_auto_sync(), true, 'B: disable_auto_sync disables B''s schedule');
select is((select g.enabled from public.get_auto_sync() g), false, 'B: get_auto_sync shows B disabled');

-- Back to A: B's calls left A alone.
-- as authenticated user A again
set local request.jwt.claims to '{"sub":"a11ce000-0000-4000-8000-00000000000a","role":"authenticated"}';
select is(
  (select format('%s|%s', g.enabled, g.every) from public.get_auto_sync() g),
  't|00:10:00',
  'A: still enabled every 10 minutes after B enabled and disabled');
reset role;

select is(
  (select array_agg(format('%s:%s:%s', s.user_id, s.enabled, s.every) order by s.user_id)
     from auto_sync.schedules s
    where s.user_id in ('a11ce000-0000-4000-8000-00000000000a', 'b0b00000-0000-4000-8000-00000000000b')),
  array['a11ce000-0000-4000-8000-00000000000a:t:00:10:00',
        'b0b00000-0000-4000-8000-00000000000b:f:00:05:00'],
  'the table holds exactly A (enabled, 10 min) and B (disabled, 5 min)');

set local role authenticated;
-- as authenticated user A, disabling
set local request.jwt.claims to '{"sub":"a11ce000-0000-4000-8000-00000000000a","role":"authenticated"}';
select is(public.disable_auto_sync(), true, 'A: disable_auto_sync disables A''s own schedule');
select is((select g.enabled from public.get_auto_sync() g), false, 'A: get_auto_sync shows A disabled');
reset role;

-------------------------------------------------------------------------------
-- service_role, for real
-------------------------------------------------------------------------------
set local role service_role;
-- as service_role
set local request.jwt.claims to '{"role":"service_role"}';

select lives_ok(format('select count(*) from auto_sync.%I', t.name), format('service_role can select auto_sync.%s', t.name))
from t_auto_sync_tables t where t.service_role_select;
select throws_ok($$select * from auto_sync.mailbox_credentials$$, '42501', 'permission denied for table mailbox_credentials',
                 'service_role cannot select auto_sync.mailbox_credentials');
select throws_ok($$update auto_sync.settings set batch_limit = 1$$, '42501', 'permission denied for table settings',
                 'service_role cannot update auto_sync.settings directly');
select throws_ok($$insert into auto_sync.used_request_ids (request_id) values ('pgtap-forged')$$, '42501',
                 'permission denied for table used_request_ids',
                 'service_role cannot insert into the replay ledger directly');

select is(
  (select format('%s|%s', s.enabled, s.every)
     from auto_sync.enable('c0c00000-0000-4000-8000-00000000000c', '5 minutes') s),
  't|00:05:00', 'service_role can call auto_sync.enable (the same 5-minute minimum as a user)');
select is(auto_sync.disable('c0c00000-0000-4000-8000-00000000000c'), true, 'service_role can call auto_sync.disable');
select is(auto_sync.accept_request(gen_random_uuid()::text, gen_random_uuid(), 'c0c00000-0000-4000-8000-00000000000c'),
          'unknown_run', 'service_role can call auto_sync.accept_request');
select isnt((select m.run_id from auto_sync.request_manual_run('c0c00000-0000-4000-8000-00000000000c') m), null,
            'service_role can call auto_sync.request_manual_run');
-- The importer connects as postgres: its functions, the credential above all, are not
-- service_role's.
select throws_ok($$select * from auto_sync.import_targets('c0c00000-0000-4000-8000-00000000000c')$$, '42501',
                 'permission denied for function import_targets', 'service_role cannot call auto_sync.import_targets');
select throws_ok($$select auto_sync.claim_mailbox(gen_random_uuid(), gen_random_uuid(), '1 minute')$$, '42501',
                 'permission denied for function claim_mailbox', 'service_role cannot call auto_sync.claim_mailbox');
select throws_ok($$select auto_sync.mailbox_credential(gen_random_uuid())$$, '42501',
                 'permission denied for function mailbox_credential', 'service_role cannot call auto_sync.mailbox_credential');
select is(
  auto_sync.start_run((select r.id from auto_sync.runs r
                        where r.user_id = 'c0c00000-0000-4000-8000-00000000000c' and r.trigger = 'manual')),
  true, 'service_role can call auto_sync.start_run');
select is(
  auto_sync.finish_run((select r.id from auto_sync.runs r
                         where r.user_id = 'c0c00000-0000-4000-8000-00000000000c' and r.trigger = 'manual'),
                       'succeeded'),
  true, 'service_role can call auto_sync.finish_run');

select throws_ok($$select auto_sync.dispatch()$$, '42501', 'permission denied for function dispatch',
                 'service_role cannot call auto_sync.dispatch');
select throws_ok($$select auto_sync.signing_keys()$$, '42501', 'permission denied for function signing_keys',
                 'service_role cannot call auto_sync.signing_keys');
select throws_ok($$select auto_sync.sign('id', 1, '{}', array['\x00'::bytea])$$, '42501',
                 'permission denied for function sign', 'service_role cannot call auto_sync.sign');

select throws_ok(q, '42501', null, format('service_role: %s is refused', q))
from unnest(array[
  $$select * from vault.secrets$$,
  $$select * from vault.decrypted_secrets$$,
  $$select vault.create_secret('whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'auto_sync_signing_key:evil')$$,
  $$select * from net.http_request_queue$$,
  $$select net.http_post('https://example.com/', '{}'::jsonb)$$
]) q;

select throws_ok($$select * from public.enable_auto_sync('10 minutes')$$, '42501',
                 'Cannot enable auto-sync: not signed in',
                 'service_role has no user: public.enable_auto_sync is refused (42501)');
reset role;

-- What service_role did, seen as postgres.
select is(
  (select format('%s|%s|%s', s.enabled, s.every, s.last_outcome)
     from auto_sync.schedules s where s.user_id = 'c0c00000-0000-4000-8000-00000000000c'),
  'f|00:05:00|succeeded',
  'service_role''s calls took effect (schedule disabled, last outcome succeeded)');

select * from finish();
rollback;
