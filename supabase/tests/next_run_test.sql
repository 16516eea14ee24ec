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

select plan(27);

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

select is(auto_sync.finish_run((select id from t_run where name = 'd-1'), 'succeeded', null, '{"has_more": true}'), true,
          'finish_run: succeeded');
select is((select s.next_run_at from auto_sync.schedules s where s.user_id = 'f1d00000-0000-4000-8000-00000000000d'),
          now() + interval '30 minutes', 'finish_run: only a partial run moves next_run_at (succeeded leaves it)');
select is(auto_sync.finish_run((select id from t_run where name = 'd-2'), 'partial', 'A mailbox failed', '{"has_more": false}'),
          true, 'finish_run: partial without more to do');
select is((select s.next_run_at from auto_sync.schedules s where s.user_id = 'f1d00000-0000-4000-8000-00000000000d'),
          now() + interval '30 minutes', 'finish_run: partial with has_more false leaves next_run_at');
select is(auto_sync.finish_run((select id from t_run where name = 'd-3'), 'partial', 'Budget reached; the next run continues',
                               '{"has_more": true, "fetched": 500}'),
          true, 'finish_run: partial with has_more true');
select is(
  (select format('%s|%s|%s', s.next_run_at = now() + interval '1 minute', s.next_run_at <= now() + interval '1 minute',
                 s.last_outcome)
     from auto_sync.schedules s where s.user_id = 'f1d00000-0000-4000-8000-00000000000d'),
  't|t|partial', 'finish_run: partial with has_more brings next_run_at to within 1 minute');
select is(
  (select format('%s|%s|%s', r.status, r.error, r.details ->> 'fetched') from auto_sync.runs r
    where r.id = (select id from t_run where name = 'd-3')),
  'partial|Budget reached; the next run continues|500', 'finish_run: the partial run keeps its error and details');
update auto_sync.schedules set next_run_at = now() - interval '5 minutes'
 where user_id = 'f1d00000-0000-4000-8000-00000000000d';
select is(auto_sync.finish_run((select id from t_run where name = 'd-4'), 'partial', null, '{"has_more": true}'), true,
          'finish_run: partial with has_more on an already due schedule');
select is((select s.next_run_at from auto_sync.schedules s where s.user_id = 'f1d00000-0000-4000-8000-00000000000d'),
          now() - interval '5 minutes', 'finish_run: never pushes an earlier next_run_at later');


select * from finish();
rollback;
