-- pgTAP: truthful run outcomes (reconcile_runs), and the schedule's side of a run that
-- ended (record_outcomes through reconcile_runs and finish_run): failure counter, retry
-- backoff, pause, and what the user sees of it (get_auto_sync)
-- (20261129120020_auto_sync_run_lifecycle.sql), as postgres (what the maintenance job
-- runs). Retention: purge_history_test.sql; the settings' bounds: run_outcome_settings_test.sql.
--
-- One transaction, rolled back: pg_cron, the pg_net worker and the functions
-- never see these rows. now() is fixed for the whole transaction. The shared database
-- may hold other (committed) runs in flight: reconcile_runs() handles those too inside
-- this transaction (rolled back), so every check below looks at this file's rows
-- (users f1000000-..., runs f2000000-..., pg_net ids 91000000xx) or compares the
-- counts with what actually changed.
begin;
\ir support/test_helpers.psql
set local client_min_messages = error;
set local timezone = 'UTC';

select plan(77);

-------------------------------------------------------------------------------
-- Fixtures
-------------------------------------------------------------------------------
select tests.create_supabase_user('outcomes-' || n, ('f1000000-0000-4000-8000-0000000000' || n)::uuid)
  from unnest(array['01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11',
                    '12', '13', '14', '15', '16', '17', '18', '19', '30', '31', '32', '99']) n;

update auto_sync.settings
   set request_ttl = '5 minutes', ack_deadline = '5 minutes', in_flight_timeout = '15 minutes',
       jitter_fraction = 0.5, max_consecutive_failures = 8,
       run_retention = '30 days', ledger_retention = '1 day', cron_history_retention = '7 days';

-- Every schedule far in the future: the only changes to next_run_at are the ones tested.
insert into auto_sync.schedules (user_id, every, enabled, next_run_at, consecutive_failures)
select ('f1000000-0000-4000-8000-0000000000' || n)::uuid, '30 minutes', n <> '19', '2100-01-01',
       case n when '12' then 3 when '13' then 6 when '14' then 7 when '15' then 5
              when '16' then 2 when '17' then 1 when '18' then 7 when '19' then 4 else 0 end
  from unnest(array['01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11',
                    '12', '13', '14', '15', '16', '17', '18', '19']) n;

-- Runs for reconcile_runs(): (user nn, run nn, pg_net id 91000000nn).
insert into auto_sync.runs (id, user_id, trigger, status, created_at, dispatched_at, accepted_at, finished_at, net_request_id)
select ('f2000000-0000-4000-8000-0000000000' || v.n)::uuid, ('f1000000-0000-4000-8000-0000000000' || v.n)::uuid,
       v.trigger, v.status, now() - v.age, case when v.trigger = 'schedule' then now() - v.age end,
       case when v.status in ('accepted', 'running') then now() - v.age end,
       case when v.status = 'succeeded' then now() - v.age + interval '1 minute' end,
       case when v.trigger = 'schedule' then ('91000000' || v.n)::bigint end
  from (values
    ('01', 'schedule', 'dispatched', interval '1 minute'),   -- pg_net: timed out
    ('02', 'schedule', 'dispatched', interval '1 minute'),   -- pg_net: 401
    ('03', 'schedule', 'dispatched', interval '1 minute'),   -- pg_net: 503
    ('04', 'schedule', 'dispatched', interval '1 minute'),   -- pg_net: 202, status update still to come
    ('05', 'schedule', 'dispatched', interval '6 minutes'),  -- no answer, past the ack deadline
    ('06', 'schedule', 'dispatched', interval '4 minutes'),  -- no answer, inside the ack deadline
    ('07', 'schedule', 'running',    interval '16 minutes'), -- never finished
    ('08', 'schedule', 'accepted',   interval '14 minutes'), -- still inside in_flight_timeout
    ('09', 'schedule', 'succeeded',  interval '2 days'),     -- finished (with a 500 and a timeout on record)
    ('10', 'schedule', 'dispatched', interval '1 minute'),   -- pg_net: long multi-line error
    ('11', 'manual',   'accepted',   interval '20 minutes'), -- manual, never finished
    ('18', 'schedule', 'dispatched', interval '10 minutes'), -- 8th failure in a row
    ('19', 'schedule', 'dispatched', interval '1 minute')    -- schedule disabled; pg_net: 500
  ) v (n, trigger, status, age);

insert into net._http_response (id, status_code, content_type, content, timed_out, error_msg, created) values
  (9100000001, null, null, null, true, 'Timeout of 5000 ms reached', now()),
  (9100000002, 401, 'application/json', '{"error":"invalid signature"}', false, null, now()),
  (9100000003, 503, 'text/plain', 'Service Unavailable', false, null, now()),
  (9100000004, 202, 'application/json', '{"run_id":"f2000000-0000-4000-8000-000000000004"}', false, null, now()),
  (9100000009, 500, 'text/plain', 'boom', true, 'Timeout', now()),
  (9100000010, null, null, null, false, E'Couldn''t connect to server\n' || repeat('x', 400), now()),
  (9100000019, 500, 'text/plain', 'boom', false, null, now());

create temp table t_before on commit drop as
  select r.id, r.status, r.finished_at, r.error from auto_sync.runs r;
create temp table t_result on commit drop as select auto_sync.reconcile_runs() as counts;

create function pg_temp.run(p_n text) returns auto_sync.runs language sql stable as $$
  select * from auto_sync.runs where id = ('f2000000-0000-4000-8000-0000000000' || p_n)::uuid
$$;
create function pg_temp.sched(p_n text) returns auto_sync.schedules language sql stable as $$
  select * from auto_sync.schedules where user_id = ('f1000000-0000-4000-8000-0000000000' || p_n)::uuid
$$;

-------------------------------------------------------------------------------
-- (a) pg_net's answers
-------------------------------------------------------------------------------
select is((select format('%s|%s', r.status, r.error) from pg_temp.run('01') r),
          'failed|Request not delivered: Timeout of 5000 ms reached',
          'timed-out request: run failed, "Request not delivered: <error>"');
select is((pg_temp.run('01')).finished_at, now(), 'timed-out request: finished_at set');
select is((select format('%s|%s', r.status, r.error) from pg_temp.run('02') r),
          'rejected|Function refused the request: HTTP 401', '401 answer: run rejected');
select is((select format('%s|%s', r.status, r.error) from pg_temp.run('03') r),
          'failed|Function failed: HTTP 503', '503 answer: run failed');
select is((select format('%s|%s', r.status, r.error) from pg_temp.run('04') r),
          'dispatched|', '202 answer with the run still dispatched: left alone');
select is((pg_temp.run('10')).status, 'failed', 'transport error: run failed');
select ok((pg_temp.run('10')).error like 'Request not delivered: Couldn''t connect to server x%',
          'transport error: the error text is kept, newline flattened');
select is(length((pg_temp.run('10')).error), length('Request not delivered: ') + 200,
          'transport error: the error text is capped at 200 characters');
select is((select format('%s|%s', r.status, r.error) from pg_temp.run('19') r),
          'failed|Function failed: HTTP 500', '500 answer: run failed');

-------------------------------------------------------------------------------
-- (b) / (c) deadlines
-------------------------------------------------------------------------------
select is((select format('%s|%s', r.status, r.error) from pg_temp.run('05') r),
          'lost|No acknowledgement from the function within 5 minutes',
          'dispatched 6 minutes ago, no answer: lost');
select is((pg_temp.run('05')).finished_at, now(), 'lost run: finished_at set');
select is((select format('%s|%s', r.status, r.error) from pg_temp.run('06') r),
          'dispatched|', 'dispatched 4 minutes ago: still dispatched');
select is((select format('%s|%s', r.status, r.error) from pg_temp.run('07') r),
          'lost|Import did not finish within 15 minutes', 'running for 16 minutes: lost');
select is((pg_temp.run('08')).status, 'accepted', 'accepted 14 minutes ago: still accepted');
select is((select format('%s|%s', r.status, r.error) from pg_temp.run('11') r),
          'lost|Import did not finish within 15 minutes', 'manual run accepted 20 minutes ago: lost');
select is((select format('%s|%s', r.status, r.error) from pg_temp.run('18') r),
          'lost|No acknowledgement from the function within 5 minutes', 'dispatched 10 minutes ago: lost');

-- finished runs are never touched
select is((select format('%s|%s|%s', r.status, r.error, r.finished_at = now() - interval '2 days' + interval '1 minute')
             from pg_temp.run('09') r),
          'succeeded||t', 'a finished run is not touched, whatever pg_net says');
select is(
  (select count(*)::integer from auto_sync.runs r join t_before b using (id)
    where b.status not in ('dispatched', 'accepted', 'running')
      and (r.status, r.finished_at, r.error) is distinct from (b.status, b.finished_at, b.error)),
  0, 'no finished run changed anywhere in the database');

-- the counts are what changed
select is((select (counts ->> 'failed')::integer from t_result),
          (select count(*)::integer from auto_sync.runs r join t_before b using (id)
            where b.status = 'dispatched' and r.status = 'failed'),
          'reconcile_runs() counts the failed runs');
select is((select (counts ->> 'rejected')::integer from t_result),
          (select count(*)::integer from auto_sync.runs r join t_before b using (id)
            where b.status = 'dispatched' and r.status = 'rejected'),
          'reconcile_runs() counts the rejected runs');
select is((select (counts ->> 'lost_unacknowledged')::integer from t_result),
          (select count(*)::integer from auto_sync.runs r join t_before b using (id)
            where b.status = 'dispatched' and r.status = 'lost'),
          'reconcile_runs() counts the unacknowledged lost runs');
select is((select (counts ->> 'lost_unfinished')::integer from t_result),
          (select count(*)::integer from auto_sync.runs r join t_before b using (id)
            where b.status in ('accepted', 'running') and r.status = 'lost'),
          'reconcile_runs() counts the unfinished lost runs');
select ok((select (counts ->> 'failed')::integer >= 4 and (counts ->> 'rejected')::integer >= 1
                  and (counts ->> 'lost_unacknowledged')::integer >= 2 and (counts ->> 'lost_unfinished')::integer >= 2
             from t_result), 'the counts include this file''s runs');

select is((select (auto_sync.reconcile_runs() ->> k)::integer), 0, format('a second reconcile_runs() finds no more %s runs', k))
  from unnest(array['failed', 'rejected', 'lost_unacknowledged', 'lost_unfinished']) k;

-------------------------------------------------------------------------------
-- Schedules after reconcile: outcome, counter, backoff, pause
-------------------------------------------------------------------------------
select is((select format('%s|%s|%s|%s', s.last_outcome, s.last_outcome_at = now(), s.consecutive_failures, s.enabled)
             from pg_temp.sched('01') s),
          'failed|t|1|t', 'first failure: last outcome failed, 1 failure in a row, still enabled');
select is((pg_temp.sched('01')).last_error, 'Request not delivered: Timeout of 5000 ms reached',
          'first failure: last_error is the run''s error');
select is((pg_temp.sched('01')).last_error_at, now(), 'first failure: last_error_at set');
select ok((select s.next_run_at between now() + interval '1 minute' and now() + interval '90 seconds'
             from pg_temp.sched('01') s),
          'first failure: retried after 1 minute * (1 + jitter), jitter 0.5');
select is((select format('%s|%s', s.last_outcome, s.consecutive_failures) from pg_temp.sched('02') s),
          'rejected|1', 'rejected run counts as a failure');
select is((select format('%s|%s', s.last_outcome, s.consecutive_failures) from pg_temp.sched('05') s),
          'lost|1', 'lost run counts as a failure');
select ok((select s.next_run_at between now() + interval '1 minute' and now() + interval '90 seconds'
             from pg_temp.sched('05') s), 'lost run: retried with backoff');
select is((select format('%s|%s|%s', s.last_outcome, s.consecutive_failures, s.next_run_at)
             from pg_temp.sched('04') s),
          '|0|2100-01-01 00:00:00+00', 'schedule of the run still in flight: unchanged');
select is((select format('%s|%s|%s|%s', s.last_outcome, s.consecutive_failures, s.next_run_at, s.last_error)
             from pg_temp.sched('11') s),
          'lost|0|2100-01-01 00:00:00+00|Import did not finish within 15 minutes',
          'lost manual run: outcome and error recorded, no failure counted, no retry scheduled');
select is((select format('%s|%s|%s', s.enabled, s.consecutive_failures, s.paused_reason) from pg_temp.sched('18') s),
          'f|8|Paused after 8 failed runs in a row: No acknowledgement from the function within 5 minutes',
          '8th scheduled failure in a row: paused with the reason');
select is((select format('%s|%s|%s|%s', s.enabled, s.consecutive_failures, s.paused_reason, s.last_outcome)
             from pg_temp.sched('19') s),
          'f|4||failed', 'disabled schedule: outcome recorded, no failure counted, no pause reason');

-------------------------------------------------------------------------------
-- finish_run: failure counting, backoff bounds, pause, reset on success
-------------------------------------------------------------------------------
insert into auto_sync.runs (id, user_id, trigger, status, created_at, accepted_at)
select ('f2000000-0000-4000-8000-0000000000' || n)::uuid, ('f1000000-0000-4000-8000-0000000000' || n)::uuid,
       'schedule', 'running', now() - interval '2 minutes', now() - interval '2 minutes'
  from unnest(array['12', '13', '14', '15', '16', '17']) n;

select is(auto_sync.finish_run('f2000000-0000-4000-8000-000000000012', 'failed', 'IMAP login failed'), true,
          'finish_run(failed) returns true');
select is((select format('%s|%s|%s', s.consecutive_failures, s.last_outcome, s.last_error) from pg_temp.sched('12') s),
          '4|failed|IMAP login failed', 'finish_run(failed): 4th failure in a row counted with its error');
select ok((select s.next_run_at between now() + interval '8 minutes' and now() + interval '12 minutes'
             from pg_temp.sched('12') s), '4th failure: retried after 2^3 = 8 minutes * (1 + jitter)');
select is(auto_sync.finish_run('f2000000-0000-4000-8000-000000000013', 'failed', 'IMAP timeout'), true,
          'finish_run(failed) on the 7th failure');
select ok((select s.next_run_at between now() + interval '30 minutes' and now() + interval '45 minutes'
             from pg_temp.sched('13') s),
          '7th failure: 2^6 = 64 minutes capped at every (30 minutes) * (1 + jitter)');
select is((select format('%s|%s', s.consecutive_failures, s.enabled) from pg_temp.sched('13') s), '7|t',
          '7th failure: still enabled');
select is(auto_sync.finish_run('f2000000-0000-4000-8000-000000000014', 'failed', 'IMAP login failed'), true,
          'finish_run(failed) on the 8th failure');
select is((select format('%s|%s|%s', s.enabled, s.consecutive_failures, s.paused_reason) from pg_temp.sched('14') s),
          'f|8|Paused after 8 failed runs in a row: IMAP login failed',
          '8th failure in a row through finish_run: paused with the reason');

select is(auto_sync.finish_run('f2000000-0000-4000-8000-000000000015', 'succeeded', null, '{"inserted": 3}'), true,
          'finish_run(succeeded)');
select is((select format('%s|%s|%s|%s', s.consecutive_failures, s.last_outcome, s.last_success_at = now(), s.next_run_at)
             from pg_temp.sched('15') s),
          '0|succeeded|t|2100-01-01 00:00:00+00', 'success resets the counter, sets last_success_at, keeps next_run_at');
select is((select format('%s|%s|%s', r.status, r.details, r.finished_at = now()) from pg_temp.run('15') r),
          'succeeded|{"inserted": 3}|t', 'finish_run still records status, details, finished_at');
select is(auto_sync.finish_run('f2000000-0000-4000-8000-000000000016', 'skipped'), true, 'finish_run(skipped)');
select is((select format('%s|%s|%s', s.consecutive_failures, s.last_outcome, s.last_success_at) from pg_temp.sched('16') s),
          '0|skipped|', 'skipped resets the counter (not a success time)');
select is(auto_sync.finish_run('f2000000-0000-4000-8000-000000000017', 'partial', null,
                               '{"has_more": true, "requested": 500, "fetched": 500, "inserted": 500}'), true,
          'finish_run(partial, new mail stored, has_more)');
select is((select format('%s|%s|%s', s.consecutive_failures, s.last_outcome, s.next_run_at <= now() + interval '1 minute')
             from pg_temp.sched('17') s),
          '0|partial|t', 'partial with new mail and more to import: counter reset, next run within a minute');

select is(auto_sync.finish_run('f2000000-0000-4000-8000-000000000001', 'succeeded'), false,
          'finish_run on a run reconcile already failed returns false');
select is((select format('%s|%s', r.status, s.consecutive_failures) from pg_temp.run('01') r, pg_temp.sched('01') s),
          'failed|1', '... and changes neither the run nor the counter');
select throws_ok($$select auto_sync.finish_run('f2000000-0000-4000-8000-000000000008', 'lost')$$, '22023',
                 'Cannot finish run: status "lost" is not a final status',
                 'finish_run still takes only succeeded | partial | skipped | failed');

-------------------------------------------------------------------------------
-- enable clears the pause and the counter
-------------------------------------------------------------------------------
select is((select format('%s|%s|%s|%s', s.enabled, s.consecutive_failures, s.paused_reason,
                         s.next_run_at = now() - interval '2 minutes' + interval '30 minutes')
             from auto_sync.enable('f1000000-0000-4000-8000-000000000014', '30 minutes') s),
          't|0||t',
          'enable() on a paused schedule: enabled, counter 0, no pause reason, due one interval after its last run (never sooner)');
select is((select format('%s|%s', s.last_outcome, s.last_error) from pg_temp.sched('14') s),
          'failed|IMAP login failed', 'enable() keeps the history (last outcome and error)');
select is((select format('%s|%s', s.consecutive_failures, s.next_run_at <= now() + interval '12 minutes')
             from auto_sync.enable('f1000000-0000-4000-8000-000000000012', '30 minutes') s),
          '0|t', 'enable() on an enabled schedule in backoff: counter 0, next run not delayed');

-------------------------------------------------------------------------------
-- public.get_auto_sync: own row only, new columns
-------------------------------------------------------------------------------
select is(
  (select array_agg(a.attname::text order by a.n)
     from pg_proc p, unnest(p.proargnames, p.proargmodes::text[]) with ordinality a (attname, mode, n)
    where p.oid = 'public.get_auto_sync()'::regprocedure and a.mode = 't'),
  array['enabled', 'every', 'next_run_at', 'last_outcome', 'last_outcome_at', 'last_success_at',
        'last_error', 'last_error_at', 'consecutive_failures', 'paused_reason'],
  'get_auto_sync() keeps its five columns first and adds the status columns');

select tests.authenticate_as('outcomes-18');
select is((select count(*)::integer from public.get_auto_sync()), 1, 'user 18: get_auto_sync returns one row');
select is(
  (select format('%s|%s|%s|%s|%s', g.enabled, g.every, g.last_outcome, g.consecutive_failures, g.paused_reason)
     from public.get_auto_sync() g),
  'f|00:30:00|lost|8|Paused after 8 failed runs in a row: No acknowledgement from the function within 5 minutes',
  'user 18: sees their own paused schedule and why');
select tests.authenticate_as('outcomes-15');
select is(
  (select format('%s|%s|%s', g.last_outcome, g.last_success_at = now(), g.consecutive_failures) from public.get_auto_sync() g),
  'succeeded|t|0', 'user 15: sees only their own schedule (last success)');
select tests.authenticate_as('outcomes-99');
select is((select count(*)::integer from public.get_auto_sync()), 0, 'a user without a schedule sees no row');
select throws_ok($$select auto_sync.reconcile_runs()$$, '42501', null, 'authenticated cannot call reconcile_runs');
select throws_ok($$select auto_sync.purge_history()$$, '42501', null, 'authenticated cannot call purge_history');
select tests.authenticate_as_role('anon');
select throws_ok($$select * from public.get_auto_sync()$$, '42501', null, 'anon cannot call get_auto_sync');
select tests.clear_authentication();

-------------------------------------------------------------------------------
-- A response is matched only within its request's life (pg_net ids restart after a crash)
-------------------------------------------------------------------------------
insert into auto_sync.runs (id, user_id, trigger, status, created_at, dispatched_at, net_request_id)
values ('f2000000-0000-4000-8000-000000000099', 'f1000000-0000-4000-8000-000000000099', 'schedule',
        'dispatched', now() - interval '1 minute', now() - interval '1 minute', 9100000099);
-- An older answer under the same id: another request's, from before a crash reset the ids.
insert into net._http_response (id, status_code, timed_out, created)
values (9100000099, 401, false, now() - interval '20 minutes');
select auto_sync.reconcile_runs();
select is((select r.status from auto_sync.runs r where r.id = 'f2000000-0000-4000-8000-000000000099'), 'dispatched',
          'a response created before the run was dispatched is not taken for its answer');

-------------------------------------------------------------------------------
-- One schedule that breaks the bookkeeping (a failure counter at its maximum, +1
-- overflows) does not stop the others' outcomes, and is set aside
-------------------------------------------------------------------------------
insert into auto_sync.schedules (user_id, every, enabled, next_run_at, consecutive_failures) values
  ('f1000000-0000-4000-8000-000000000030', '30 minutes', true, '2100-01-01', 2147483647),  -- +1 overflows
  ('f1000000-0000-4000-8000-000000000031', '30 minutes', true, '2100-01-01', 0);
insert into auto_sync.runs (id, user_id, trigger, status, created_at, dispatched_at) values
  ('f2000000-0000-4000-8000-000000000030', 'f1000000-0000-4000-8000-000000000030', 'schedule', 'dispatched',
   now() - interval '10 minutes', now() - interval '10 minutes'),
  ('f2000000-0000-4000-8000-000000000031', 'f1000000-0000-4000-8000-000000000031', 'schedule', 'dispatched',
   now() - interval '10 minutes', now() - interval '10 minutes');
select lives_ok($$select auto_sync.reconcile_runs()$$,
                'reconcile_runs() completes although one schedule''s failure counter overflows');
select is((select array_agg(r.status order by r.id) from auto_sync.runs r
            where r.id in ('f2000000-0000-4000-8000-000000000030', 'f2000000-0000-4000-8000-000000000031')),
          array['lost', 'lost'], 'both runs get their true outcome');
select is((select array_agg(s.consecutive_failures order by s.user_id) from auto_sync.schedules s
            where s.user_id in ('f1000000-0000-4000-8000-000000000030', 'f1000000-0000-4000-8000-000000000031')),
          array[2147483647, 1], 'the other schedule''s bookkeeping is done; the broken one is skipped');
-- The broken one is reported and set aside, as SECURITY.md says: not dispatched every tick.
select is((select format('%s|%s|%s', s.last_error, s.last_error_at = now(), s.next_run_at = now() + interval '1 hour')
             from auto_sync.schedules s where s.user_id = 'f1000000-0000-4000-8000-000000000030'),
          'Skipped by the run bookkeeping: this schedule''s values are invalid|t|t',
          'the schedule that broke reconcile_runs() is reported (last_error) and pushed an hour ahead');
select is((select s.next_run_at > now() + interval '59 minutes' from auto_sync.schedules s
            where s.user_id = 'f1000000-0000-4000-8000-000000000030'),
          true, '... so it is not due at the next ticks');
select is((select count(*)::integer from auto_sync.due_schedules d
            where d.user_id = 'f1000000-0000-4000-8000-000000000030'),
          0, '... and not in due_schedules');

-- The same through finish_run: the run still ends with its true status.
insert into auto_sync.schedules (user_id, every, enabled, next_run_at, consecutive_failures)
values ('f1000000-0000-4000-8000-000000000032', '30 minutes', true, '2100-01-01', 2147483647);
insert into auto_sync.runs (id, user_id, trigger, status, created_at, accepted_at)
values ('f2000000-0000-4000-8000-000000000032', 'f1000000-0000-4000-8000-000000000032', 'schedule', 'running',
        now() - interval '1 minute', now() - interval '1 minute');
select is(auto_sync.finish_run('f2000000-0000-4000-8000-000000000032', 'failed', 'IMAP login failed'), true,
          'finish_run on a schedule that breaks the bookkeeping still returns true');
select is((select format('%s|%s', r.status, r.error) from pg_temp.run('32') r), 'failed|IMAP login failed',
          '... the run keeps its true outcome');
select is((select format('%s|%s|%s', s.consecutive_failures, s.last_error, s.next_run_at = now() + interval '1 hour')
             from pg_temp.sched('32') s),
          '2147483647|Skipped by the run bookkeeping: this schedule''s values are invalid|t',
          '... and the schedule is reported and pushed an hour ahead');

select * from finish();
rollback;
