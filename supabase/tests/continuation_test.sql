-- pgTAP: auto_sync.continue_run() (20261202100000_auto_sync_continuation.sql), called as
-- the importer calls it, right after finish_run: which runs are continued at once (a
-- signed request queued through pg_net, a dispatched run, one per user), which are not,
-- and a run not started in its instance brought forward instead.
--
-- One transaction, rolled back: the requests queued here are never sent.
begin;
\ir support/test_helpers.psql
set local timezone = 'UTC';

select plan(34);

update auto_sync.settings
   set endpoint_url = 'https://example.supabase.co/functions/v1/cron-auto-sync', jitter_fraction = 0;

-- One user per case, each with a schedule due in 20 minutes and a running run that
-- finish_run then ends with the case's status and details.
create temp table t_case (name text primary key, user_id uuid, run_id uuid, trigger text,
                          status text, details jsonb) on commit drop;
insert into t_case (name, trigger, status, details) values
  ('continued',   'schedule', 'partial',   '{"requested": 500, "fetched": 500, "inserted": 500, "has_more": true}'),
  ('manual',      'manual',   'partial',   '{"requested": 500, "fetched": 500, "inserted": 500, "has_more": true}'),
  ('nothing_new', 'schedule', 'partial',   '{"requested": 500, "fetched": 500, "inserted": 0, "has_more": true}'),
  ('starved',     'schedule', 'partial',   '{"requested": 500, "fetched": 0, "inserted": 0, "has_more": true}'),
  ('complete',    'schedule', 'succeeded', '{"requested": 50, "fetched": 50, "inserted": 50, "has_more": false}'),
  ('failed',      'schedule', 'failed',    '{"requested": 500, "fetched": 10, "inserted": 10, "has_more": true}'),
  ('disabled',    'schedule', 'partial',   '{"requested": 500, "fetched": 500, "inserted": 500, "has_more": true}'),
  ('not_started', 'schedule', 'partial',   '{"requested": 0, "fetched": 0, "inserted": 0, "has_more": true, "not_started": true}');
update t_case set user_id = tests.create_supabase_user('continue-' || name), run_id = gen_random_uuid();
insert into auto_sync.schedules (user_id, every, enabled, next_run_at)
  select user_id, '30 minutes', true, now() + interval '20 minutes' from t_case;
insert into auto_sync.runs (id, user_id, trigger, status, started_at)
  select run_id, user_id, trigger, 'running', now() from t_case;
update auto_sync.schedules s set last_run_id = c.run_id from t_case c where c.user_id = s.user_id;

select ok(auto_sync.finish_run(c.run_id, c.status, null, c.details), 'finish_run: ' || c.name)
  from t_case c where c.name <> 'disabled' order by c.name;
select auto_sync.disable(user_id) from t_case where name = 'disabled';
select ok(auto_sync.finish_run(run_id, status, null, details), 'finish_run: disabled')
  from t_case where name = 'disabled';

create temp table t_continued on commit drop as
  select c.name, auto_sync.continue_run(c.run_id) as next_run_id from t_case c;

-------------------------------------------------------------------------------
-- A scheduled partial run that stored new mail and has more: continued at once
-------------------------------------------------------------------------------
select isnt((select next_run_id from t_continued where name = 'continued'), null,
  'a scheduled partial run that stored new mail and has more is continued');
select is(r.status, 'dispatched', 'the continuation is a dispatched run, as dispatch() makes them')
  from auto_sync.runs r join t_continued t on t.next_run_id = r.id where t.name = 'continued';
select is(r.trigger, 'schedule', 'of the schedule (its failures count, it may continue in turn)')
  from auto_sync.runs r join t_continued t on t.next_run_id = r.id where t.name = 'continued';
select is(r.user_id, c.user_id, 'for the same user')
  from auto_sync.runs r join t_continued t on t.next_run_id = r.id join t_case c using (name)
 where t.name = 'continued';
select ok(r.net_request_id is not null, 'its request is queued in pg_net')
  from auto_sync.runs r join t_continued t on t.next_run_id = r.id where t.name = 'continued';

select is(q.url, 'https://example.supabase.co/functions/v1/cron-auto-sync', 'to the endpoint')
  from net.http_request_queue q join auto_sync.runs r on r.net_request_id = q.id
  join t_continued t on t.next_run_id = r.id where t.name = 'continued';
select is(q.headers ->> 'webhook-id', r.id::text, 'webhook-id is the continuation''s run id')
  from net.http_request_queue q join auto_sync.runs r on r.net_request_id = q.id
  join t_continued t on t.next_run_id = r.id where t.name = 'continued';
select is(q.headers ->> 'webhook-signature',
          auto_sync.sign(r.id::text, (q.headers ->> 'webhook-timestamp')::bigint,
                         convert_from(q.body, 'UTF8'), auto_sync.signing_keys()),
          'signed with the Vault key, exactly as dispatch() signs')
  from net.http_request_queue q join auto_sync.runs r on r.net_request_id = q.id
  join t_continued t on t.next_run_id = r.id where t.name = 'continued';
select is(convert_from(q.body, 'UTF8')::jsonb ->> 'sub', c.user_id::text, 'its claims name the user')
  from net.http_request_queue q join auto_sync.runs r on r.net_request_id = q.id
  join t_continued t on t.next_run_id = r.id join t_case c using (name) where t.name = 'continued';
select is(s.last_run_id, t.next_run_id, 'the schedule''s last run is the continuation')
  from auto_sync.schedules s join t_case c using (user_id) join t_continued t using (name)
 where c.name = 'continued';
select is(s.next_run_at, now() + interval '30 minutes',
  'and its next regular run is one interval away (the dispatched rule)')
  from auto_sync.schedules s join t_case c using (user_id) where c.name = 'continued';

select is(auto_sync.continue_run(run_id), null, 'a run is continued once only')
  from t_case where name = 'continued';
select is(count(*)::int, 1, 'one run in flight for the user: a backlog is one request at a time')
  from auto_sync.runs_in_flight f join t_case c using (user_id) where c.name = 'continued';

-- The continuation ends partial again: it continues in turn.
select auto_sync.accept_request('req-' || t.next_run_id, t.next_run_id, c.user_id)
  from t_continued t join t_case c using (name) where t.name = 'continued';
select auto_sync.start_run(t.next_run_id) from t_continued t where t.name = 'continued';
select ok(auto_sync.finish_run(t.next_run_id, 'partial', null,
          '{"requested": 500, "fetched": 500, "inserted": 500, "has_more": true}'),
  'the continuation finishes partial')
  from t_continued t where t.name = 'continued';
select isnt(auto_sync.continue_run(t.next_run_id), null, 'and is continued in turn')
  from t_continued t where t.name = 'continued';

-------------------------------------------------------------------------------
-- Not continued
-------------------------------------------------------------------------------
select is(t.next_run_id, null, 'not continued: ' || t.name)
  from t_continued t where t.name in ('manual', 'nothing_new', 'starved', 'complete', 'failed', 'disabled')
 order by t.name;
select is(count(*)::int, 0, 'no run was created for the runs not continued')
  from auto_sync.runs r join t_case c using (user_id)
 where c.name in ('manual', 'nothing_new', 'starved', 'complete', 'failed', 'disabled', 'not_started')
   and r.id <> c.run_id;
select is(s.next_run_at, now() + interval '20 minutes', 'a manual run never moves the schedule')
  from auto_sync.schedules s join t_case c using (user_id) where c.name = 'manual';

-------------------------------------------------------------------------------
-- Not started in its instance: brought forward to the next tick, no request at once
-------------------------------------------------------------------------------
select is(t.next_run_id, null, 'a run not started in its instance is not sent again at once')
  from t_continued t where t.name = 'not_started';
select is(s.next_run_at, now() + interval '1 minute', 'but is due within a minute (the follow-up rule)')
  from auto_sync.schedules s join t_case c using (user_id) where c.name = 'not_started';

-------------------------------------------------------------------------------
-- No endpoint: nothing sent
-------------------------------------------------------------------------------
update auto_sync.settings set endpoint_url = null;
select tests.create_supabase_user('continue-no-endpoint', 'c0000000-0000-4000-8000-0000000000e1');
insert into auto_sync.schedules (user_id, every, enabled, next_run_at)
  values ('c0000000-0000-4000-8000-0000000000e1', '30 minutes', true, now() + interval '20 minutes');
insert into auto_sync.runs (id, user_id, trigger, status, started_at)
  values ('c1000000-0000-4000-8000-0000000000e1', 'c0000000-0000-4000-8000-0000000000e1', 'schedule', 'running', now());
update auto_sync.schedules set last_run_id = 'c1000000-0000-4000-8000-0000000000e1'
 where user_id = 'c0000000-0000-4000-8000-0000000000e1';
select auto_sync.finish_run('c1000000-0000-4000-8000-0000000000e1', 'partial', null,
  '{"requested": 5, "fetched": 5, "inserted": 5, "has_more": true}');
select is(auto_sync.continue_run('c1000000-0000-4000-8000-0000000000e1'), null,
  'without an endpoint nothing is sent; the follow-up rule stands');

select * from finish();
rollback;
