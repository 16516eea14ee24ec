-- pgTAP: auto_sync.enable() / disable(), the service role's schedule API, and the one
-- interval bound (auto_sync.interval_problem: 5 minutes to 30 days) that enable() and the
-- schedules CHECK share. The public wrappers: schedule_user_api_test.sql.
--
-- One transaction, rolled back; now() is fixed inside it.
begin;
\ir support/test_helpers.psql
set local timezone = 'UTC';

select plan(16);

select tests.create_supabase_user('enable-' || n, ('d0000000-0000-4000-8000-0000000000' || n)::uuid)
  from unnest(array['02', '09', '31']) n;
-- ...02: enabled, due in an hour; ...09: dispatched just now, next run 20 minutes ahead.
insert into auto_sync.schedules (user_id, every, enabled, next_run_at) values
  ('d0000000-0000-4000-8000-000000000002', '30 minutes', true, now() + interval '1 hour'),
  ('d0000000-0000-4000-8000-000000000009', '20 minutes', true, now() + interval '20 minutes');
insert into auto_sync.runs (user_id, trigger, status, created_at, dispatched_at)
values ('d0000000-0000-4000-8000-000000000009', 'schedule', 'dispatched', now(), now());

select is(
  (select format('%s|%s|%s', s.enabled, s.every, s.next_run_at = now())
     from auto_sync.enable('d0000000-0000-4000-8000-000000000031', '15 minutes') s),
  't|00:15:00|t', 'enable: a new schedule is enabled and due at once (next_run_at = now())');
select ok((select s.next_run_at <= now() from auto_sync.schedules s where s.user_id = 'd0000000-0000-4000-8000-000000000031'),
          'enable: the new schedule is due (next_run_at <= now())');
select is(
  (select s.next_run_at from auto_sync.schedules s where s.user_id = 'd0000000-0000-4000-8000-000000000009'),
  now() + interval '20 minutes', 'fixture: user ...09 is scheduled 20 minutes ahead after its run');
select is(auto_sync.disable('d0000000-0000-4000-8000-000000000009'), true, 'disable: returns true');
select is(
  (select format('%s|%s', s.enabled, s.next_run_at = now() + interval '20 minutes') from auto_sync.schedules s
    where s.user_id = 'd0000000-0000-4000-8000-000000000009'),
  'f|t', 'disable: the schedule is disabled, next_run_at untouched');
select is(
  (select format('%s|%s|%s', s.enabled, s.every, s.next_run_at = now() + interval '20 minutes')
     from auto_sync.enable('d0000000-0000-4000-8000-000000000009', '20 minutes') s),
  't|00:20:00|t', 'disable then enable right after a run: due one interval after that run, not sooner');
select is(
  (select s.next_run_at from auto_sync.enable('d0000000-0000-4000-8000-000000000002', '20 minutes') s),
  now() + interval '20 minutes', 'enable while enabled with a shorter interval brings next_run_at forward');
select is(
  (select format('%s|%s', s.every, s.next_run_at = now() + interval '20 minutes')
     from auto_sync.enable('d0000000-0000-4000-8000-000000000002', '2 hours') s),
  '02:00:00|t', 'enable while enabled with a longer interval never delays the next run');
select throws_ok($$select auto_sync.enable('d0000000-0000-4000-8000-000000000031', '299 seconds')$$,
                 '22023', 'Cannot enable auto-sync: interval "00:04:59" is shorter than 5 minutes',
                 'enable: an interval under 5 minutes is refused (22023), for the service role as for a user');
select is((select s.every from auto_sync.enable('d0000000-0000-4000-8000-000000000031', '5 minutes') s),
          interval '5 minutes', 'enable: 5 minutes, the minimum, is accepted');
select throws_ok($$select auto_sync.enable(null, '10 minutes')$$, '22004', 'Cannot enable auto-sync: user id is null',
                 'enable: a null user is refused (22004)');
select throws_ok($$select auto_sync.enable('d0000000-0000-4000-8000-0000000000ff', '10 minutes')$$, '23503',
                 'Cannot enable auto-sync: user "d0000000-0000-4000-8000-0000000000ff" does not exist',
                 'enable: an unknown user is refused (23503)');
select isnt(auto_sync.disable('d0000000-0000-4000-8000-0000000000ff'), true,
            'disable: a user without a schedule does not return true');

-- The upper bound
select throws_ok($$select auto_sync.enable('d0000000-0000-4000-8000-000000000031', '31 days')$$,
                 '22023', 'Cannot enable auto-sync: interval "31 days" is longer than 30 days',
                 'enable: an interval over 30 days is refused (22023)');
select is((select s.every from auto_sync.enable('d0000000-0000-4000-8000-000000000031', '30 days') s),
          interval '30 days', 'enable: 30 days, the maximum, is accepted');
select throws_ok($$update auto_sync.schedules set every = '300000 years'
                    where user_id = 'd0000000-0000-4000-8000-000000000031'$$, '23514', null,
                 'a CHECK bounds every even when it is written directly');


select * from finish();
rollback;
