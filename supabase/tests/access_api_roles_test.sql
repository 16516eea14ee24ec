-- pgTAP: anon, authenticated and service_role, for real: what each may call and read in
-- signed auto-sync and the mail import (the catalog's grants: access_privileges_test.sql;
-- what the user functions do: schedule_user_api_test.sql, mail_import_test.sql).
--
-- One transaction, rolled back: pg_cron and the pg_net worker never see the rows created
-- here, and nothing is left behind.
begin;
\ir support/test_helpers.psql
\ir support/access_objects.psql

select plan(141);

select tests.create_supabase_user('a', 'a11ce000-0000-4000-8000-00000000000a');
select tests.create_supabase_user('c', 'c0c00000-0000-4000-8000-00000000000c');

-- A real call of every auto_sync function (from t_auto_sync_functions, so the list is
-- written once): each argument null of its type. For anon and authenticated the schema
-- itself is closed, so every call fails before its arguments matter.
create temp table t_auto_sync_calls on commit drop as
select f.sig,
       format('select * from %s.%I(%s)', p.pronamespace::regnamespace, p.proname,
              (select string_agg(format('null::%s', format_type(a.t, null)), ', ' order by a.n)
                 from unnest(p.proargtypes::oid[]) with ordinality a (t, n))) as q
  from t_auto_sync_functions f
  join pg_proc p on p.oid = f.sig::regprocedure;
grant select on t_auto_sync_calls to public;

-------------------------------------------------------------------------------
-- anon
-------------------------------------------------------------------------------
select tests.authenticate_as_role('anon');

select throws_ok(format('select * from auto_sync.%I', t.name), '42501', 'permission denied for schema auto_sync',
                 format('anon cannot select auto_sync.%s', t.name))
from t_auto_sync_tables t;

select throws_ok(c.q, '42501', 'permission denied for schema auto_sync', format('anon cannot call %s', c.sig))
  from t_auto_sync_calls c;

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

select throws_ok(c.q, '42501', null, format('anon: %s is refused', c.q)) from t_vault_net_calls c;
select tests.clear_authentication();

-------------------------------------------------------------------------------
-- authenticated (user A): not even their own rows in auto_sync
-------------------------------------------------------------------------------
select tests.authenticate_as('a');

select throws_ok(format('select * from auto_sync.%I', t.name), '42501', 'permission denied for schema auto_sync',
                 format('authenticated cannot select auto_sync.%s, not even their own row', t.name))
from t_auto_sync_tables t;

select throws_ok(c.q, '42501', 'permission denied for schema auto_sync', format('authenticated cannot call %s', c.sig))
  from t_auto_sync_calls c;

select throws_ok(c.q, '42501', null, format('authenticated: %s is refused', c.q)) from t_vault_net_calls c;
select tests.clear_authentication();

-------------------------------------------------------------------------------
-- service_role
-------------------------------------------------------------------------------
select tests.authenticate_as_role('service_role');

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
     from auto_sync.enable(tests.get_supabase_uid('c'), '5 minutes') s),
  't|00:05:00', 'service_role can call auto_sync.enable (the same 5-minute minimum as a user)');
select is(auto_sync.disable(tests.get_supabase_uid('c')), true, 'service_role can call auto_sync.disable');
select is(auto_sync.accept_request(gen_random_uuid()::text, gen_random_uuid(), tests.get_supabase_uid('c')),
          'unknown_run', 'service_role can call auto_sync.accept_request');
select isnt((select m.run_id from auto_sync.request_manual_run(tests.get_supabase_uid('c')) m), null,
            'service_role can call auto_sync.request_manual_run');
-- The importer connects as postgres: its functions, the credential above all, are not
-- service_role's.
select throws_ok($$select * from auto_sync.import_targets(tests.get_supabase_uid('c'))$$, '42501',
                 'permission denied for function import_targets', 'service_role cannot call auto_sync.import_targets');
select throws_ok($$select auto_sync.claim_mailbox(gen_random_uuid(), gen_random_uuid(), '1 minute')$$, '42501',
                 'permission denied for function claim_mailbox', 'service_role cannot call auto_sync.claim_mailbox');
select throws_ok($$select auto_sync.mailbox_credential(gen_random_uuid())$$, '42501',
                 'permission denied for function mailbox_credential', 'service_role cannot call auto_sync.mailbox_credential');
select is(
  auto_sync.start_run((select r.id from auto_sync.runs r
                        where r.user_id = tests.get_supabase_uid('c') and r.trigger = 'manual')),
  true, 'service_role can call auto_sync.start_run');
select is(
  auto_sync.finish_run((select r.id from auto_sync.runs r
                         where r.user_id = tests.get_supabase_uid('c') and r.trigger = 'manual'),
                       'succeeded'),
  true, 'service_role can call auto_sync.finish_run');

select throws_ok($$select auto_sync.dispatch()$$, '42501', 'permission denied for function dispatch',
                 'service_role cannot call auto_sync.dispatch');
select throws_ok($$select auto_sync.signing_keys()$$, '42501', 'permission denied for function signing_keys',
                 'service_role cannot call auto_sync.signing_keys');
select throws_ok($$select auto_sync.sign('id', 1, '{}', array['\x00'::bytea])$$, '42501',
                 'permission denied for function sign', 'service_role cannot call auto_sync.sign');

select throws_ok(c.q, '42501', null, format('service_role: %s is refused', c.q)) from t_vault_net_calls c;

select throws_ok($$select * from public.enable_auto_sync('10 minutes')$$, '42501',
                 'Cannot enable auto-sync: not signed in',
                 'service_role has no user: public.enable_auto_sync is refused (42501)');
select tests.clear_authentication();

-- What service_role did, seen as postgres.
select is(
  (select format('%s|%s|%s', s.enabled, s.every, s.last_outcome)
     from auto_sync.schedules s where s.user_id = tests.get_supabase_uid('c')),
  'f|00:05:00|succeeded',
  'service_role''s calls took effect (schedule disabled, last outcome succeeded)');


select * from finish();
rollback;
