-- pgTAP: when a schedule runs next. auto_sync.next_run_at() is the one rule
-- (20261129120010_auto_sync_next_run.sql); here it is checked as a table of events, and
-- through the run's end (finish_run -> record_outcomes) that brings a run forward.
-- Backoff after failures: run_outcomes_test.sql; after a dispatch: dispatch_test.sql;
-- enable(): schedule_enable_test.sql.
--
-- One transaction, rolled back; now() is fixed inside it.
begin;
\ir support/test_helpers.psql
set local timezone = 'UTC';

select plan(45);

select tests.create_supabase_user('d', 'f1d00000-0000-4000-8000-00000000000d');
create temp table t_run (name text primary key, id uuid not null) on commit drop;

-------------------------------------------------------------------------------
-- auto_sync.next_run_at(), event by event (no jitter: exact times)
-------------------------------------------------------------------------------
select is(
  auto_sync.next_run_at(v.event, interval '30 minutes', now() + interval '10 minutes',
                        p_failures => v.failures, p_last_run_at => v.last_run_at),
  v.expected,
  format('next_run_at(%s%s): %s', coalesce(v.event, 'null'), coalesce(', ' || v.note, ''), v.why))
  from (values
    ('enabled', 0, null::timestamptz, now(), null, 'a new schedule is due at once'),
    ('enabled', 0, now() - interval '10 minutes', now() + interval '20 minutes', 'last run 10 min ago',
     'one interval after the last run, never sooner'),
    ('enabled', 0, now() - interval '2 hours', now(), 'last run 2 h ago', 'due at once, never in the past'),
    ('interval_set', 0, null, now() + interval '10 minutes', 'due in 10 min', 'a new interval never delays a run'),
    ('dispatched', 0, null, now() + interval '30 minutes', null, 'one interval from now'),
    ('failed', 1, null, now() + interval '1 minute', '1st failure', 'retried after 1 minute'),
    ('failed', 4, null, now() + interval '8 minutes', '4th failure', 'retried after 2^3 = 8 minutes'),
    ('failed', 7, null, now() + interval '30 minutes', '7th failure', '2^6 = 64 minutes, capped at every'),
    ('failed', 100, null, now() + interval '30 minutes', '100th failure', 'the exponent is capped: no overflow'),
    ('follow_up', 0, null, now() + interval '1 minute', 'due in 10 min', 'brought forward to within a minute'),
    ('broken', 0, null, now() + interval '1 hour', null, 'an hour ahead, out of every tick''s way'),
    (null, 0, null, now() + interval '10 minutes', null, 'unchanged')
  ) v (event, failures, last_run_at, expected, note, why);
select is(auto_sync.next_run_at('follow_up', interval '30 minutes', now() - interval '5 minutes'),
          now() - interval '5 minutes', 'next_run_at(follow_up): never pushes an earlier next_run_at later');
select ok(
  (select bool_and(t between now() + interval '30 minutes' and now() + interval '45 minutes')
     from (select auto_sync.next_run_at('dispatched', interval '30 minutes', null, 0.5) t
             from generate_series(1, 50)) x),
  'next_run_at(dispatched, jitter 0.5): within [every, every * 1.5] from now');
select ok(
  (select count(distinct t) > 1
     from (select auto_sync.next_run_at('dispatched', interval '30 minutes', null, 0.5) t
             from generate_series(1, 50)) x),
  'next_run_at(dispatched, jitter 0.5): spread, not one instant');
select throws_ok($$select auto_sync.next_run_at('sooner please', interval '30 minutes', now())$$, '22023',
                 'Cannot compute the next run: unknown event "sooner please"',
                 'next_run_at: an unknown event is refused, not guessed');
select is(
  array(select format('%s:%s', r, f) from unnest(array['anon', 'authenticated', 'service_role']) r,
               unnest(array['auto_sync.next_run_at(text, interval, timestamptz, numeric, integer, timestamptz)',
                            'auto_sync.interval_problem(interval)']) f
         where has_function_privilege(r, f, 'execute')),
  '{}'::text[], 'no API role may call next_run_at or interval_problem');

-------------------------------------------------------------------------------
-- finish_run: a partial run with more to do brings the next scheduled run forward
-------------------------------------------------------------------------------
select lives_ok($$select auto_sync.enable('f1d00000-0000-4000-8000-00000000000d', '30 minutes')$$, 'user D has a schedule');
update auto_sync.schedules set next_run_at = now() + interval '30 minutes'
 where user_id = 'f1d00000-0000-4000-8000-00000000000d';
with r as (
  insert into auto_sync.runs (user_id, trigger, status, started_at)
  select 'f1d00000-0000-4000-8000-00000000000d', 'schedule', 'running', now() from generate_series(1, 4)
  returning id
)
insert into t_run select 'd-' || row_number() over (order by id), id from r;

select is(auto_sync.finish_run((select id from t_run where name = 'd-1'), 'succeeded', null,
                               '{"has_more": true, "inserted": 3}'), true,
          'finish_run: succeeded');
select is((select s.next_run_at from auto_sync.schedules s where s.user_id = 'f1d00000-0000-4000-8000-00000000000d'),
          now() + interval '30 minutes', 'finish_run: only a partial run moves next_run_at (succeeded leaves it)');
select is(auto_sync.finish_run((select id from t_run where name = 'd-2'), 'partial', 'A mailbox failed', '{"has_more": false}'),
          true, 'finish_run: partial without more to do');
select is((select s.next_run_at from auto_sync.schedules s where s.user_id = 'f1d00000-0000-4000-8000-00000000000d'),
          now() + interval '30 minutes', 'finish_run: partial with has_more false leaves next_run_at');
select is(auto_sync.finish_run((select id from t_run where name = 'd-3'), 'partial', 'Budget reached; the next run continues',
                               '{"has_more": true, "requested": 500, "fetched": 500, "inserted": 500}'),
          true, 'finish_run: partial, new mail stored, has_more true');
select is(
  (select format('%s|%s|%s', s.next_run_at = now() + interval '1 minute', s.next_run_at <= now() + interval '1 minute',
                 s.last_outcome)
     from auto_sync.schedules s where s.user_id = 'f1d00000-0000-4000-8000-00000000000d'),
  't|t|partial', 'finish_run: a scheduled partial run that stored new mail and has more brings next_run_at to within 1 minute');
select is(
  (select format('%s|%s|%s', r.status, r.error, r.details ->> 'fetched') from auto_sync.runs r
    where r.id = (select id from t_run where name = 'd-3')),
  'partial|Budget reached; the next run continues|500', 'finish_run: the partial run keeps its error and details');
update auto_sync.schedules set next_run_at = now() - interval '5 minutes'
 where user_id = 'f1d00000-0000-4000-8000-00000000000d';
select is(auto_sync.finish_run((select id from t_run where name = 'd-4'), 'partial', null,
                               '{"has_more": true, "requested": 5, "fetched": 5, "inserted": 5}'), true,
          'finish_run: partial with has_more on an already due schedule');
select is((select s.next_run_at from auto_sync.schedules s where s.user_id = 'f1d00000-0000-4000-8000-00000000000d'),
          now() - interval '5 minutes', 'finish_run: never pushes an earlier next_run_at later');



-------------------------------------------------------------------------------
-- Follow-ups that cannot be gamed (finish_run's details contract, record_outcomes)
-------------------------------------------------------------------------------
select tests.create_supabase_user('e', 'f1e00000-0000-4000-8000-00000000000e');
update auto_sync.settings set jitter_fraction = 0, max_consecutive_failures = 3;
insert into auto_sync.schedules (user_id, every, enabled, next_run_at)
values ('f1e00000-0000-4000-8000-00000000000e', '30 minutes', true, now() + interval '30 minutes');
-- A run of user E, running, with the given trigger: its id.
create function pg_temp.run_e(p_trigger text) returns uuid language sql as $$
  insert into auto_sync.runs (user_id, trigger, status, accepted_at, started_at)
  values ('f1e00000-0000-4000-8000-00000000000e', p_trigger, 'running', now(), now())
  returning id
$$;
create function pg_temp.sched_e() returns auto_sync.schedules language sql stable as $$
  select * from auto_sync.schedules where user_id = 'f1e00000-0000-4000-8000-00000000000e'
$$;

-- More waiting, but nothing new stored (all duplicates, or nothing fetched): no follow-up.
select ok(auto_sync.finish_run(pg_temp.run_e('schedule'), 'partial', null,
                               '{"has_more": true, "requested": 50, "fetched": 50, "inserted": 0}'),
          'E: a scheduled partial run that stored nothing new');
select is((select format('%s|%s', s.next_run_at = now() + interval '30 minutes', s.consecutive_failures) from pg_temp.sched_e() s),
          't|0', 'E: has_more without new mail stored does not bring the next run forward (and is no failure)');
select ok(auto_sync.finish_run(pg_temp.run_e('schedule'), 'partial', 'Not started: no budget left',
                               '{"has_more": true, "fetched": 0, "inserted": 0}'),
          'E: a scheduled run that never started (asked for nothing)');
select is((select format('%s|%s', s.next_run_at = now() + interval '30 minutes', s.consecutive_failures) from pg_temp.sched_e() s),
          't|0', 'E: a run that asked for nothing is neither brought forward nor a failure');

-- A manual run ("sync now") never shortens the interval.
select ok(auto_sync.finish_run(pg_temp.run_e('manual'), 'partial', null,
                               '{"has_more": true, "requested": 500, "fetched": 500, "inserted": 500}'),
          'E: a manual partial run that stored new mail and has more');
select is((select format('%s|%s', s.next_run_at = now() + interval '30 minutes', s.last_outcome) from pg_temp.sched_e() s),
          't|partial', 'E: a manual run never brings the scheduled run forward');

-- Asked for messages, received none: a failure for backoff and pause, whatever the status says.
update auto_sync.schedules set last_success_at = null where user_id = 'f1e00000-0000-4000-8000-00000000000e';
select ok(auto_sync.finish_run(pg_temp.run_e('schedule'), 'partial', 'Budget reached; the next run continues',
                               '{"has_more": true, "requested": 500, "fetched": 0, "inserted": 0}'),
          'E: a scheduled run that asked for 500 messages and received none');
select is((select format('%s|%s|%s|%s|%s', s.last_outcome, s.consecutive_failures, s.last_error,
                         s.last_success_at is null, s.next_run_at = now() + interval '1 minute')
             from pg_temp.sched_e() s),
          'partial|1|The mail server sent none of the 500 message(s) asked for|t|t',
          'E: counted as the 1st failure in a row with why, no success recorded, retried after the backoff (1 minute), not followed up');
select ok(auto_sync.finish_run(pg_temp.run_e('schedule'), 'succeeded', null,
                               '{"has_more": false, "requested": 3, "fetched": 0, "inserted": 0}'),
          'E: a run that says succeeded but received none of the 3 messages it asked for');
select is((select format('%s|%s', s.consecutive_failures, s.next_run_at = now() + interval '2 minutes') from pg_temp.sched_e() s),
          '2|t', 'E: 2nd failure in a row, backoff 2 minutes');
select ok(auto_sync.finish_run(pg_temp.run_e('manual'), 'partial', null,
                               '{"has_more": true, "requested": 9, "fetched": 0}'),
          'E: a manual run that received none');
select is((select format('%s|%s|%s', s.consecutive_failures, s.enabled, s.last_error) from pg_temp.sched_e() s),
          '2|t|The mail server sent none of the 9 message(s) asked for',
          'E: a manual run''s failure is recorded but never counted toward the pause');
select ok(auto_sync.finish_run(pg_temp.run_e('schedule'), 'partial', null,
                               '{"has_more": true, "requested": 500, "fetched": 0}'),
          'E: a third scheduled run that received none');
select is((select format('%s|%s|%s', s.enabled, s.consecutive_failures, s.paused_reason) from pg_temp.sched_e() s),
          'f|3|Paused after 3 failed runs in a row: The mail server sent none of the 500 message(s) asked for',
          'E: a server that announces mail and sends none pauses the schedule like any failure');

-- Odd details count as nothing; real progress resets the counter.
select lives_ok($$select auto_sync.enable('f1e00000-0000-4000-8000-00000000000e', '30 minutes')$$, 'E: enabled again');
select ok(auto_sync.finish_run(pg_temp.run_e('schedule'), 'succeeded', null,
                               '{"requested": "lots", "fetched": -1, "inserted": null}'),
          'E: a run whose details hold no usable counts');
select is((select format('%s|%s', s.consecutive_failures, s.last_success_at = now()) from pg_temp.sched_e() s),
          '0|t', 'E: counts that are not non-negative numbers are 0: no failure, a success');
select is((select count(*)::integer from auto_sync.runs r
            where r.user_id = 'f1e00000-0000-4000-8000-00000000000e' and r.status = 'running'),
          0, 'E: every run finished with its own status, whatever the schedule made of it');

select * from finish();
rollback;
