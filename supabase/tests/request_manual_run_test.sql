-- pgTAP: auto_sync.request_manual_run(), a signed-in user's "sync now" as import-emails
-- records it: an accepted manual run, at most one per p_min_gap per user, none while a run
-- of the user is in flight.
--
-- One transaction, rolled back; now() is fixed inside it.
begin;
\ir support/test_helpers.psql
set local client_min_messages = error;

select plan(19);

select tests.create_supabase_user('manual-' || n, ('d0000000-0000-4000-8000-0000000000' || n)::uuid)
  from unnest(array['02', '03', '05', '06', '07', '08']) n;
update auto_sync.settings set in_flight_timeout = '20 minutes';
insert into auto_sync.schedules (user_id, every, enabled, next_run_at) values
  ('d0000000-0000-4000-8000-000000000002', '30 minutes', true,  now() + interval '1 hour'),
  ('d0000000-0000-4000-8000-000000000003', '30 minutes', false, '2000-01-01'),  -- disabled
  ('d0000000-0000-4000-8000-000000000006', '30 minutes', true,  '2000-01-03'),
  ('d0000000-0000-4000-8000-000000000007', '30 minutes', true,  '2000-01-04'),
  ('d0000000-0000-4000-8000-000000000005', '30 minutes', true,  '2000-01-05'),
  ('d0000000-0000-4000-8000-000000000008', '30 minutes', true,  '2000-01-06');
insert into auto_sync.runs (id, user_id, trigger, status, created_at) values
  ('e0000000-0000-4000-8000-000000000006', 'd0000000-0000-4000-8000-000000000006', 'manual', 'accepted',
   now() - interval '19 minutes'),
  ('e0000000-0000-4000-8000-000000000007', 'd0000000-0000-4000-8000-000000000007', 'schedule', 'running',
   now() - interval '1 minute'),
  ('e0000000-0000-4000-8000-000000000005', 'd0000000-0000-4000-8000-000000000005', 'schedule', 'running',
   now() - interval '21 minutes');

create temp table t_manual on commit drop as
select m.run_id as id, m.retry_after_seconds from auto_sync.request_manual_run('d0000000-0000-4000-8000-000000000002') m;
select is(
  (select format('%s|%s', m.id is not null, m.retry_after_seconds) from t_manual m),
  't|', 'request_manual_run: the first request gets a run id and no retry_after_seconds');
select is(
  (select array_agg(format('%s|%s|%s|%s', r.id = m.id, r.trigger, r.status, r.accepted_at = now()))
     from auto_sync.runs r, t_manual m
    where r.user_id = 'd0000000-0000-4000-8000-000000000002'),
  array['t|manual|accepted|t'], 'request_manual_run: records one accepted manual run and returns its id');
select ok(
  exists (select 1 from pg_locks l,
                 (select hashtextextended('auto_sync.manual:d0000000-0000-4000-8000-000000000002', 0) as k) h
           where l.pid = pg_backend_pid() and l.locktype = 'advisory' and l.granted and l.mode = 'ExclusiveLock'
             and l.classid::bigint = (h.k >> 32) & 4294967295 and l.objid::bigint = h.k & 4294967295
             and l.objsubid = 1),
  'request_manual_run: takes the user''s advisory lock and holds it to the end of the transaction (serialises concurrent requests)');

create temp table t_manual_again on commit drop as
select m.run_id, m.retry_after_seconds from auto_sync.request_manual_run('d0000000-0000-4000-8000-000000000002') m;
select is(
  (select format('%s|%s', m.run_id is null, m.retry_after_seconds between 1 and 60) from t_manual_again m),
  't|t', 'request_manual_run: a second request within the minute gets no run and a retry_after_seconds in [1, 60]');
select is((select m.retry_after_seconds from t_manual_again m), 60,
          'request_manual_run: at the same instant as the first, the wait is the whole minute');
select is(
  (select count(*) from auto_sync.runs r where r.user_id = 'd0000000-0000-4000-8000-000000000002' and r.trigger = 'manual'),
  1::bigint, 'request_manual_run: a refused request creates no run');

-- A manual run 45 s ago: 15 s to wait; 61 s ago: allowed again (user ...03, whose schedule is disabled).
insert into auto_sync.runs (user_id, trigger, status, accepted_at, created_at)
values ('d0000000-0000-4000-8000-000000000003', 'manual', 'succeeded', now() - interval '45 seconds',
        now() - interval '45 seconds');
select is(
  (select format('%s|%s', m.run_id is null, m.retry_after_seconds)
     from auto_sync.request_manual_run('d0000000-0000-4000-8000-000000000003') m),
  't|15', 'request_manual_run: 45 s after the last manual run, retry after 15 s (whatever that run''s status)');
select is(
  (select format('%s|%s', m.run_id is null, m.retry_after_seconds)
     from auto_sync.request_manual_run('d0000000-0000-4000-8000-000000000003', '10 minutes') m),
  't|555', 'request_manual_run: p_min_gap sets the gap (10 minutes - 45 s = 555 s)');
update auto_sync.runs set created_at = now() - interval '61 seconds'
 where user_id = 'd0000000-0000-4000-8000-000000000003' and trigger = 'manual';
select is(
  (select format('%s|%s', m.run_id is not null, m.retry_after_seconds)
     from auto_sync.request_manual_run('d0000000-0000-4000-8000-000000000003') m),
  't|', 'request_manual_run: 61 s after the last manual run, a new run is accepted');
select is(
  (select format('%s|%s', m.run_id is null, m.retry_after_seconds)
     from auto_sync.request_manual_run('d0000000-0000-4000-8000-000000000003') m),
  't|60', 'request_manual_run: and the one after it is refused again');

-- No "sync now" while a run of the user is in flight (runs_in_flight), scheduled or manual:
-- user ...07 has a scheduled run running since 1 minute, user ...06 a manual one accepted
-- 19 minutes ago (in_flight_timeout is 20 minutes here), user ...05 one from 21 minutes ago.
select is(
  (select format('%s|%s', m.run_id is null, m.retry_after_seconds)
     from auto_sync.request_manual_run('d0000000-0000-4000-8000-000000000007') m),
  't|10', 'request_manual_run: refused while a scheduled run is in flight, retry after one tick (10 s)');
select is(
  (select format('%s|%s', m.run_id is null, m.retry_after_seconds)
     from auto_sync.request_manual_run('d0000000-0000-4000-8000-000000000006') m),
  't|10', 'request_manual_run: refused while a manual run is in flight, however long ago its gap ended');
select is((select count(*)::integer from auto_sync.runs r
            where r.user_id in ('d0000000-0000-4000-8000-000000000006', 'd0000000-0000-4000-8000-000000000007')
              and r.trigger = 'manual' and r.created_at = now()),
          0, 'request_manual_run: the refused requests created no run');
select isnt((select m.run_id from auto_sync.request_manual_run('d0000000-0000-4000-8000-000000000005') m), null,
            'request_manual_run: a run older than in_flight_timeout no longer blocks (reconcile_runs calls it lost)');
select is(
  (select m.retry_after_seconds from auto_sync.request_manual_run('d0000000-0000-4000-8000-000000000008') m),
  null::integer, 'request_manual_run: one user''s limit does not touch another user');
-- Two "sync now" of one user never overlap: past the gap, a manual run still in flight refuses the next.
update auto_sync.runs set created_at = now() - interval '2 minutes'
 where user_id = 'd0000000-0000-4000-8000-000000000008' and trigger = 'manual';
select is(
  (select format('%s|%s', m.run_id is null, m.retry_after_seconds)
     from auto_sync.request_manual_run('d0000000-0000-4000-8000-000000000008') m),
  't|10', 'request_manual_run: past the minute, refused while the previous manual run is still in flight');
update auto_sync.runs set status = 'succeeded', finished_at = now()
 where user_id = 'd0000000-0000-4000-8000-000000000008' and trigger = 'manual';
select isnt((select m.run_id from auto_sync.request_manual_run('d0000000-0000-4000-8000-000000000008') m), null,
            'request_manual_run: accepted once that run has ended');
select is(
  auto_sync.finish_run((select id from t_manual), 'partial'),
  true, 'finish_run: a manual run can be finished');
select is(
  (select s.last_outcome from auto_sync.schedules s where s.user_id = 'd0000000-0000-4000-8000-000000000002'),
  'partial', 'finish_run: a manual run also sets the schedule''s last_outcome');


select * from finish();
rollback;
