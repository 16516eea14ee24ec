-- pgTAP: runs whose function instance is gone are called lost within a minute
-- (reconcile_stopped_runs() in 20261129120020_auto_sync_run_lifecycle.sql), as postgres (what the pg_cron job runs).
-- One transaction, rolled back; now() is fixed inside it.
begin;
\ir support/test_helpers.psql
set local client_min_messages = error;

select plan(19);

select tests.create_supabase_user('stopped-' || n, ('f5000000-0000-4000-8000-00000000000' || n)::uuid)
  from generate_series(1, 4) n;
insert into auto_sync.schedules (user_id, every, next_run_at)
select ('f5000000-0000-4000-8000-00000000000' || n)::uuid, '30 minutes', now() + interval '30 minutes'
  from generate_series(1, 4) n;
-- 1: its instance is gone (6 s past); 2: inside the 5-second margin; 3: not yet;
-- 4: an older function recorded no instance end.
insert into auto_sync.runs (id, user_id, trigger, status, accepted_at)
select ('f6000000-0000-4000-8000-00000000000' || n)::uuid,
       ('f5000000-0000-4000-8000-00000000000' || n)::uuid, 'schedule', 'accepted', now()
  from generate_series(1, 4) n;

-- start_run records the instance's end, bounded to an hour ahead.
select ok(auto_sync.start_run('f6000000-0000-4000-8000-000000000001', now() - interval '6 seconds'),
          'start_run takes the instance''s end');
select ok(auto_sync.start_run('f6000000-0000-4000-8000-000000000002', now() - interval '4 seconds'), 'run 2 started');
select ok(auto_sync.start_run('f6000000-0000-4000-8000-000000000003', now() + interval '3 days'), 'run 3 started');
select ok(auto_sync.start_run('f6000000-0000-4000-8000-000000000004'), 'start_run without an end still works');
select is((select status from auto_sync.runs where id = 'f6000000-0000-4000-8000-000000000001'), 'running',
          'accepted -> running');
select is((select must_finish_by from auto_sync.runs where id = 'f6000000-0000-4000-8000-000000000003'),
          now() + interval '1 hour', 'an end further than an hour ahead is cut to an hour');
select is((select must_finish_by from auto_sync.runs where id = 'f6000000-0000-4000-8000-000000000004'),
          null, 'no end recorded');
select is(auto_sync.start_run('f6000000-0000-4000-8000-000000000001', now()), null,
          'a running run is not started again');

-- Run 1 and run 3 each hold a mailbox lease.
insert into public.mailboxes (id, user_id, host, port, username, tls_mode, folders, import_run_id, import_lease_until)
values ('f7000000-0000-4000-8000-000000000001', 'f5000000-0000-4000-8000-000000000001', 'imap.example.test', 993,
        'u1', 'tls', array['INBOX'], 'f6000000-0000-4000-8000-000000000001', now() + interval '2 minutes'),
       ('f7000000-0000-4000-8000-000000000003', 'f5000000-0000-4000-8000-000000000003', 'imap.example.test', 993,
        'u3', 'tls', array['INBOX'], 'f6000000-0000-4000-8000-000000000003', now() + interval '2 minutes');

select is(auto_sync.reconcile_stopped_runs() >= 1, true, 'reconcile_stopped_runs reports what it called lost');
select is((select import_run_id from public.mailboxes where id = 'f7000000-0000-4000-8000-000000000001'), null,
          'the lost run''s mailbox lease is released: the next run may start at once');
select is((select import_run_id from public.mailboxes where id = 'f7000000-0000-4000-8000-000000000003'),
          'f6000000-0000-4000-8000-000000000003'::uuid, 'a live run keeps its lease');
select is((select format('%s|%s', status, error) from auto_sync.runs where id = 'f6000000-0000-4000-8000-000000000001'),
          'lost|The function instance ended (a runtime limit) before the run finished; the next run continues',
          'a run 6 s past its instance''s end is lost, saying why');
select is((select status from auto_sync.runs where id = 'f6000000-0000-4000-8000-000000000002'), 'running',
          'within the 5-second margin the run may still finish');
select is((select status from auto_sync.runs where id = 'f6000000-0000-4000-8000-000000000003'), 'running',
          'a run whose instance lives on is left alone');
select is((select status from auto_sync.runs where id = 'f6000000-0000-4000-8000-000000000004'), 'running',
          'a run without an end waits for in_flight_timeout, as before');
select is((select format('%s|%s', last_outcome, consecutive_failures) from auto_sync.schedules
            where user_id = 'f5000000-0000-4000-8000-000000000001'), 'lost|1',
          'the schedule records the outcome and retries with backoff');

-- Who may call what; the job.
select is(has_function_privilege('service_role', 'auto_sync.start_run(uuid, timestamptz)', 'execute'), true,
          'service_role starts runs');
select is(has_function_privilege('service_role', 'auto_sync.reconcile_stopped_runs()', 'execute')
          or has_function_privilege('authenticated', 'auto_sync.reconcile_stopped_runs()', 'execute')
          or has_function_privilege('anon', 'auto_sync.reconcile_stopped_runs()', 'execute'), false,
          'only postgres reconciles');
select is((select format('%s|%s', j.schedule, j.command) from cron.job j where j.jobname = 'auto-sync-stopped-runs'),
          '* * * * *|select auto_sync.reconcile_stopped_runs()',
          'pg_cron job auto-sync-stopped-runs runs every minute, with no secret in its command');

select * from finish();
rollback;
