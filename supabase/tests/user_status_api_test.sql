-- pgTAP: what a signed-in user's app sees of its own syncs: public.get_auto_sync_run,
-- public.list_auto_sync_runs and public.get_mailbox_states act for the caller only (another
-- user's run id returns nothing), show only error text a user may read, and say which
-- mailboxes need the user; anonymous users are refused by the user API unless
-- auto_sync.settings.allow_anonymous_users.
--
-- One transaction, rolled back.
begin;
\ir support/test_helpers.psql

select plan(42);

-- As tests.authenticate_as, with Supabase Auth's is_anonymous claim.
create function tests.authenticate_anonymously(p_identifier text, p_is_anonymous boolean default true) returns void
language plpgsql as $$
begin
  perform tests.authenticate_as(p_identifier);
  perform set_config('request.jwt.claims',
                     (current_setting('request.jwt.claims')::jsonb || jsonb_build_object('is_anonymous', p_is_anonymous))::text,
                     true);
end
$$;
grant execute on function tests.authenticate_anonymously(text, boolean) to authenticated;

select tests.create_supabase_user('a', 'a11ce000-0000-4000-8000-00000000000a');
select tests.create_supabase_user('b', 'b0b00000-0000-4000-8000-00000000000b');

-- A's runs, oldest first, and one of B's (written as the functions and the maintenance job write them).
insert into auto_sync.runs (id, user_id, trigger, status, created_at, accepted_at, started_at, finished_at, error, details) values
  ('00000000-0000-4000-8000-0000000000a1', tests.get_supabase_uid('a'), 'schedule', 'succeeded',
   now() - interval '50 minutes', now() - interval '50 minutes', now() - interval '50 minutes', now() - interval '49 minutes',
   null, '{"fetched": 12, "inserted": 10, "duplicates": 2, "has_more": false}'),
  ('00000000-0000-4000-8000-0000000000a2', tests.get_supabase_uid('a'), 'schedule', 'rejected',
   now() - interval '40 minutes', null, null, now() - interval '39 minutes',
   'Function refused the request: HTTP 401', null),
  ('00000000-0000-4000-8000-0000000000a3', tests.get_supabase_uid('a'), 'schedule', 'failed',
   now() - interval '30 minutes', null, null, now() - interval '29 minutes',
   'Request not delivered: Couldn''t connect to server 10.1.2.3:8000', null),
  ('00000000-0000-4000-8000-0000000000a4', tests.get_supabase_uid('a'), 'manual', 'failed',
   now() - interval '20 minutes', now() - interval '20 minutes', now() - interval '20 minutes', now() - interval '19 minutes',
   'imap.example.com: login refused' || chr(27) || '[31m by the server', '{"fetched": 0, "inserted": 0, "duplicates": 0}'),
  ('00000000-0000-4000-8000-0000000000a5', tests.get_supabase_uid('a'), 'manual', 'running',
   now() - interval '1 minute', now() - interval '1 minute', now() - interval '1 minute', null, null, null),
  ('00000000-0000-4000-8000-0000000000b1', tests.get_supabase_uid('b'), 'manual', 'succeeded',
   now() - interval '5 minutes', now() - interval '5 minutes', now() - interval '5 minutes', now() - interval '4 minutes',
   'B''s private error', '{"fetched": 99, "inserted": 99, "duplicates": 0}');

-- A's mailboxes, one per state (as the importer leaves them), and one of B's.
insert into public.mailboxes (id, user_id, host, port, username, enabled, paused_reason,
                              consecutive_auth_failures, last_error, last_synced_at, import_lease_until, created_at) values
  ('00000000-0000-4000-8000-00000000aa01', tests.get_supabase_uid('a'), 'imap.example.com', 993, 'paused', true,
   'Paused after 3 failed logins: update the password or token to resume', 3, 'Login refused', null, null, now() - interval '7 days'),
  ('00000000-0000-4000-8000-00000000aa02', tests.get_supabase_uid('a'), 'imap.example.com', 993, 'refused', true,
   null, 1, 'Login refused', now() - interval '1 day', null, now() - interval '6 days'),
  ('00000000-0000-4000-8000-00000000aa03', tests.get_supabase_uid('a'), 'imap.example.com', 993, 'disabled', false,
   null, 0, null, now() - interval '1 day', null, now() - interval '5 days'),
  ('00000000-0000-4000-8000-00000000aa04', tests.get_supabase_uid('a'), 'imap.example.com', 993, 'syncing', true,
   null, 0, null, now() - interval '1 day', now() + interval '2 minutes', now() - interval '4 days'),
  ('00000000-0000-4000-8000-00000000aa05', tests.get_supabase_uid('a'), 'imap.example.com', 993, 'failing', true,
   null, 0, 'Folder "Archive" does not exist', now() - interval '1 day', null, now() - interval '3 days'),
  ('00000000-0000-4000-8000-00000000aa06', tests.get_supabase_uid('a'), 'imap.example.com', 993, 'new', true,
   null, 0, null, null, null, now() - interval '2 days'),
  ('00000000-0000-4000-8000-00000000aa07', tests.get_supabase_uid('a'), 'imap.example.com', 993, 'fine', true,
   null, 0, null, now() - interval '1 hour', now() - interval '1 minute', now() - interval '1 day'),
  ('00000000-0000-4000-8000-00000000bb01', tests.get_supabase_uid('b'), 'imap.example.org', 993, 'b', true,
   null, 2, 'Login refused', null, null, now());

-- Signed in as nobody.
select tests.authenticate_as_role('authenticated');
select throws_ok($$select * from public.get_auto_sync_run('00000000-0000-4000-8000-0000000000a1')$$, '42501',
                 'Cannot read sync runs: not signed in', 'get_auto_sync_run without a sub claim is refused (42501)');
select throws_ok($$select * from public.list_auto_sync_runs()$$, '42501',
                 'Cannot list sync runs: not signed in', 'list_auto_sync_runs without a sub claim is refused (42501)');
select throws_ok($$select * from public.get_mailbox_states()$$, '42501',
                 'Cannot read mailbox states: not signed in', 'get_mailbox_states without a sub claim is refused (42501)');
select tests.authenticate_as_role('service_role');
select throws_ok($$select * from public.list_auto_sync_runs()$$, '42501',
                 'Cannot list sync runs: not signed in', 'service_role with no user is refused too');

-- A: one run by id.
select tests.authenticate_as('a');
select results_eq(
  $$select id, trigger, status, fetched, inserted, duplicates, has_more, error
      from public.get_auto_sync_run('00000000-0000-4000-8000-0000000000a1')$$,
  $$values ('00000000-0000-4000-8000-0000000000a1'::uuid, 'schedule', 'succeeded', 12::bigint, 10::bigint,
            2::bigint, false, null::text)$$,
  'A: own run by id: status and counts');
select ok((select created_at is not null and started_at is not null and finished_at > started_at
             from public.get_auto_sync_run('00000000-0000-4000-8000-0000000000a1')),
          'A: own run by id: timestamps');
select is_empty($$select * from public.get_auto_sync_run('00000000-0000-4000-8000-0000000000b1')$$,
                'A: B''s run id returns nothing');
select is_empty($$select * from public.get_auto_sync_run('00000000-0000-4000-8000-0000000000ff')$$,
                'A: an unknown run id returns nothing');
select is_empty($$select * from public.get_auto_sync_run(null)$$, 'A: a null run id returns nothing');
select results_eq(
  $$select status, fetched, has_more, finished_at from public.get_auto_sync_run('00000000-0000-4000-8000-0000000000a5')$$,
  $$values ('running', null::bigint, null::boolean, null::timestamptz)$$,
  'A: a run in flight: running, no counts yet, not finished');

-- Error text a user may read.
select is((select error from public.get_auto_sync_run('00000000-0000-4000-8000-0000000000a2')),
          'The sync request was refused before the import started; auto-sync tries again',
          'A: a rejected run shows a generic error, not the HTTP status');
select is((select error from public.get_auto_sync_run('00000000-0000-4000-8000-0000000000a3')),
          'The sync request did not reach the importer; auto-sync tries again',
          'A: a run never delivered shows a generic error');
select ok((select position('10.1.2.3' in error) = 0 from public.get_auto_sync_run('00000000-0000-4000-8000-0000000000a3')),
          'A: pg_net''s message (an internal address) is not shown');
select is((select error from public.get_auto_sync_run('00000000-0000-4000-8000-0000000000a4')),
          'imap.example.com: login refused [31m by the server',
          'A: the importer''s error is shown, control characters replaced');
select tests.clear_authentication();
select is(auto_sync.run_error_for_user('failed', now(), repeat('x', 600)), repeat('x', 500),
          'run_error_for_user: at most 500 characters');
select is(auto_sync.run_error_for_user('succeeded', now(), null), null, 'run_error_for_user: no error, none shown');
select tests.authenticate_as('a');

-- A: recent runs.
select results_eq(
  $$select id from public.list_auto_sync_runs()$$,
  $$values ('00000000-0000-4000-8000-0000000000a5'::uuid), ('00000000-0000-4000-8000-0000000000a4'::uuid),
           ('00000000-0000-4000-8000-0000000000a3'::uuid), ('00000000-0000-4000-8000-0000000000a2'::uuid),
           ('00000000-0000-4000-8000-0000000000a1'::uuid)$$,
  'A: list_auto_sync_runs returns A''s runs only, newest first');
select results_eq($$select id from public.list_auto_sync_runs(2)$$,
                  $$values ('00000000-0000-4000-8000-0000000000a5'::uuid), ('00000000-0000-4000-8000-0000000000a4'::uuid)$$,
                  'A: p_limit bounds the list');
select is((select error from public.list_auto_sync_runs() where id = '00000000-0000-4000-8000-0000000000a3'),
          'The sync request did not reach the importer; auto-sync tries again',
          'A: the list shows the same safe error as the run');
select throws_ok(format('select * from public.list_auto_sync_runs(%s)', l), '22023', null,
                 format('A: p_limit %s is refused (22023)', l))
from unnest(array['0', '101', 'null']) l;

-- B sees B's.
select tests.authenticate_as('b');
select results_eq($$select id from public.list_auto_sync_runs()$$,
                  $$values ('00000000-0000-4000-8000-0000000000b1'::uuid)$$, 'B: only B''s run');
select is_empty($$select * from public.get_auto_sync_run('00000000-0000-4000-8000-0000000000a1')$$,
                'B: A''s run id returns nothing');

-- A: mailbox states.
select tests.authenticate_as('a');
select results_eq(
  $$select username, state, needs_user from public.get_mailbox_states()$$,
  $$values ('paused', 'paused', true), ('refused', 'credential_refused', true), ('disabled', 'disabled', false),
           ('syncing', 'syncing', false), ('failing', 'failing', false), ('new', 'waiting', false),
           ('fine', 'ok', false)$$,
  'A: each mailbox''s state and whether it needs the user, oldest mailbox first; not B''s');
select is((select paused_reason from public.get_mailbox_states() where username = 'paused'),
          'Paused after 3 failed logins: update the password or token to resume', 'A: the pause says what to do');
select is((select last_error from public.get_mailbox_states() where username = 'failing'),
          'Folder "Archive" does not exist', 'A: a failing mailbox shows its last error');
select tests.authenticate_as('b');
select results_eq($$select mailbox_id, state, needs_user from public.get_mailbox_states()$$,
                  $$values ('00000000-0000-4000-8000-00000000bb01'::uuid, 'credential_refused', true)$$,
                  'B: only B''s mailbox');

-- Anonymous users (Supabase Auth's is_anonymous claim): refused by default.
select tests.authenticate_anonymously('a');
select throws_ok(q, '42501', m, format('anonymous: %s is refused', q))
from (values
  ($$select * from public.get_auto_sync_run('00000000-0000-4000-8000-0000000000a1')$$,
   'Cannot read sync runs: anonymous users are not allowed'),
  ($$select * from public.list_auto_sync_runs()$$, 'Cannot list sync runs: anonymous users are not allowed'),
  ($$select * from public.get_mailbox_states()$$, 'Cannot read mailbox states: anonymous users are not allowed'),
  ($$select public.add_mailbox('imap.example.com', 993, 'anon@example.com', 'secret')$$,
   'Cannot add mailbox: anonymous users are not allowed'),
  ($$select public.update_mailbox('00000000-0000-4000-8000-00000000aa07', p_label => 'x')$$,
   'Cannot update mailbox: anonymous users are not allowed'),
  ($$select * from public.enable_auto_sync('30 minutes')$$, 'Cannot enable auto-sync: anonymous users are not allowed')
) t (q, m);
select is(public.disable_auto_sync(), false, 'anonymous: disable_auto_sync, which only stops work, still runs');
select is(public.remove_mailbox('00000000-0000-4000-8000-00000000aa07'), true,
          'anonymous: remove_mailbox, which only stops work, still runs');
select tests.authenticate_anonymously('a', false);
select is((select count(*) from public.list_auto_sync_runs()), 5::bigint, 'is_anonymous false: allowed');

-- The switch allows them.
select tests.clear_authentication();
update auto_sync.settings set allow_anonymous_users = true;
select tests.authenticate_anonymously('a');
select is((select count(*) from public.list_auto_sync_runs()), 5::bigint, 'allow_anonymous_users: anonymous may list runs');
select is((select count(*) from public.get_mailbox_states()), 6::bigint, 'allow_anonymous_users: anonymous may read mailbox states');
select isnt(public.add_mailbox('imap.example.com', 993, 'anon@example.com', 'secret'), null,
            'allow_anonymous_users: anonymous may add a mailbox');
select is((select enabled from public.enable_auto_sync('30 minutes')), true,
          'allow_anonymous_users: anonymous may enable auto-sync');
select tests.clear_authentication();
select is((select allow_anonymous_users from auto_sync.settings), true, 'the switch is a settings column');

select * from finish();
rollback;
