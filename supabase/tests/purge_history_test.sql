-- pgTAP: retention, auto_sync.purge_history(), and the maintenance job
-- (20261129120050_auto_sync_maintenance.sql), as postgres (what the job runs).
-- One transaction, rolled back; now() is fixed inside it.
begin;
\ir support/test_helpers.psql
set local client_min_messages = error;
set local timezone = 'UTC';

select plan(9);

select tests.create_supabase_user('purge-' || n, ('f1000000-0000-4000-8000-0000000000' || n)::uuid)
  from unnest(array['20', '21']) n;
update auto_sync.settings
   set request_ttl = '5 minutes', ack_deadline = '5 minutes',
       run_retention = '30 days', ledger_retention = '1 day', cron_history_retention = '7 days';
insert into auto_sync.schedules (user_id, every, enabled, next_run_at)
select ('f1000000-0000-4000-8000-0000000000' || n)::uuid, '30 minutes', true, '2100-01-01'
  from unnest(array['20', '21']) n;

-------------------------------------------------------------------------------
-- Retention: purge_history()
-------------------------------------------------------------------------------
insert into auto_sync.runs (id, user_id, trigger, status, created_at, finished_at, net_request_id) values
  ('f2000000-0000-4000-8000-000000000020', 'f1000000-0000-4000-8000-000000000020', 'schedule', 'succeeded',
   now() - interval '40 days', now() - interval '40 days', 9100000020),  -- the schedule's last run: kept
  ('f2000000-0000-4000-8000-000000000021', 'f1000000-0000-4000-8000-000000000020', 'schedule', 'failed',
   now() - interval '41 days', now() - interval '41 days', 9100000021),  -- old: deleted
  ('f2000000-0000-4000-8000-000000000022', 'f1000000-0000-4000-8000-000000000020', 'schedule', 'succeeded',
   now() - interval '29 days', now() - interval '29 days', 9100000022),  -- inside retention: kept
  ('f2000000-0000-4000-8000-000000000023', 'f1000000-0000-4000-8000-000000000021', 'manual', 'lost',
   now() - interval '31 days', now() - interval '31 days', null),        -- old: deleted
  ('f2000000-0000-4000-8000-000000000024', 'f1000000-0000-4000-8000-000000000021', 'schedule', 'dispatched',
   now() - interval '40 days', null, 9100000024);                        -- not finished: kept
update auto_sync.schedules set last_run_id = 'f2000000-0000-4000-8000-000000000020'
 where user_id = 'f1000000-0000-4000-8000-000000000020';

insert into net._http_response (id, status_code, timed_out, created) values
  (9100000021, 200, false, now() - interval '41 days' + interval '3 seconds'),  -- ours, old: deleted
  (9100000022, 200, false, now() - interval '2 hours'),  -- ours, recent: kept
  (9100000098, 200, false, now() - interval '2 days'),   -- not ours: kept
  -- run 20's pg_net id, but created long after run 20's request could be answered: ids
  -- restart after a crash, so this is another request's response: kept
  (9100000020, 200, false, now() - interval '2 days');

insert into auto_sync.used_request_ids (request_id, used_at) values
  ('pgtap-outcomes-old', now() - interval '25 hours'),
  ('pgtap-outcomes-recent', now() - interval '23 hours');

create temp table t_cron_runs (runid bigint, label text) on commit drop;
with ins as (
  insert into cron.job_run_details (jobid, job_pid, database, username, command, status, return_message, start_time, end_time)
  select v.jobid, 0, 'postgres', 'postgres', 'pgtap-outcomes', 'succeeded', 'pgtap-outcomes ' || v.label,
         now() - v.age, now() - v.age
    from (values
      ((select jobid from cron.job where jobname = 'auto-sync-dispatch'), 'dispatch-old', interval '8 days'),
      ((select jobid from cron.job where jobname = 'auto-sync-maintenance'), 'maintenance-old', interval '8 days'),
      ((select jobid from cron.job where jobname = 'auto-sync-dispatch'), 'dispatch-recent', interval '6 days'),
      (-4242::bigint, 'other-old', interval '30 days')
    ) v (jobid, label, age)
  returning runid, return_message
)
insert into t_cron_runs select runid, substr(return_message, 16) from ins;

create temp table t_purge on commit drop as select auto_sync.purge_history() as counts;

select is(
  (select array_agg(substr(r.id::text, 35) order by r.id) from auto_sync.runs r
    where r.id in ('f2000000-0000-4000-8000-000000000020', 'f2000000-0000-4000-8000-000000000021',
                   'f2000000-0000-4000-8000-000000000022', 'f2000000-0000-4000-8000-000000000023',
                   'f2000000-0000-4000-8000-000000000024')),
  array['20', '22', '24'],
  'purge keeps the schedule''s last run, runs inside retention and unfinished runs; deletes the other old runs');
select ok((select (counts ->> 'runs')::integer >= 2 from t_purge), 'purge_history() counts the runs it deleted');
select is(
  (select array_agg(h.id order by h.id) from net._http_response h
    where h.id in (9100000020, 9100000021, 9100000022, 9100000098)),
  array[9100000020, 9100000022, 9100000098]::bigint[],
  'purge deletes our responses older than 1 day (id and time window), keeps recent ones, other applications'' and a reused id''s');
select is(
  (select array_agg(u.request_id order by u.request_id) from auto_sync.used_request_ids u
    where u.request_id like 'pgtap-outcomes-%'),
  array['pgtap-outcomes-recent'], 'purge deletes ledger ids older than ledger_retention (1 day) only');
select is(
  (select array_agg(t.label order by t.label) from t_cron_runs t
    where exists (select 1 from cron.job_run_details d where d.runid = t.runid)),
  array['dispatch-recent', 'other-old'],
  'purge deletes our two jobs'' cron history older than 7 days, and nothing of other jobs');
select is((select count(*)::integer from jsonb_object_keys((select counts from t_purge))), 4,
          'purge_history() returns counts for runs, request_ids, cron_run_details, http_responses');

-------------------------------------------------------------------------------
-- The maintenance job
-------------------------------------------------------------------------------
select is((select count(*)::integer from cron.job j where j.jobname = 'auto-sync-maintenance'), 1,
          'exactly one pg_cron job auto-sync-maintenance');
select is((select format('%s|%s', j.schedule, j.command) from cron.job j where j.jobname = 'auto-sync-maintenance'),
          '*/10 * * * *|select auto_sync.reconcile_runs(); select auto_sync.purge_history();',
          'auto-sync-maintenance runs reconcile_runs() then purge_history() every 10 minutes');
select is((select count(*)::integer from cron.job j where j.jobname = 'auto-sync-dispatch'), 1,
          'auto-sync-dispatch is still there, once');

select * from finish();
rollback;
