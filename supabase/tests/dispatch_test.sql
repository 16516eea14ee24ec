-- pgTAP: auto_sync.dispatch() and the runs it creates (accepted, started, finished), as
-- postgres (what pg_cron runs). "Sync now": request_manual_run_test.sql; enable / disable:
-- schedule_enable_test.sql.
--
-- Everything happens in one transaction that is rolled back: pg_cron's own
-- dispatch() and the pg_net worker never see these rows, and the requests
-- queued here are never sent. now() is the same for the whole transaction, so every
-- dispatch() below shares one timestamp.
--
-- Isolation from the rest of the database (other users' committed schedules may be
-- due too): before the first tick, the other due schedules are moved a day ahead
-- inside this transaction (rolled back at the end; pg_cron's dispatch skips them
-- while they are locked, for the second this file runs). On top of that, this file's
-- users get next_run_at values decades in the past and the later ticks run with a
-- small settings.batch_limit: dispatch() takes the oldest due schedules first.
begin;
\ir support/test_helpers.psql
-- dispatch() raises a WARNING when endpoint_url is unset; that case is tested.
set local client_min_messages = error;
set local timezone = 'UTC';

select plan(93);

-------------------------------------------------------------------------------
-- Fixtures
-------------------------------------------------------------------------------
select tests.create_supabase_user('dispatch-' || n, ('d0000000-0000-4000-8000-0000000000' || n)::uuid)
  from unnest(array['01', '02', '03', '04', '05', '06', '07', '08', '09',
                    '11', '12', '13', '14', '15', '21', '41', '42']) n;

-- The settings under test (the committed row is untouched after the rollback).
update auto_sync.settings
   set endpoint_url = 'https://example.supabase.co/functions/v1/cron-auto-sync',
       batch_limit = 100,
       request_ttl = '5 minutes',
       request_timeout_ms = 7000,
       in_flight_timeout = '20 minutes',
       jitter_fraction = 0.5;

-- First tick: 8 schedules, 3 of which must be picked.
insert into auto_sync.schedules (user_id, every, enabled, next_run_at) values
  ('d0000000-0000-4000-8000-000000000003', '30 minutes', false, '2000-01-01'), -- disabled
  ('d0000000-0000-4000-8000-000000000004', '30 minutes', true,  '2000-01-02'), -- 'dispatched' run in flight
  ('d0000000-0000-4000-8000-000000000006', '30 minutes', true,  '2000-01-03'), -- 'accepted' run in flight
  ('d0000000-0000-4000-8000-000000000007', '30 minutes', true,  '2000-01-04'), -- 'running' run in flight
  ('d0000000-0000-4000-8000-000000000005', '40 minutes', true,  '2000-01-05'), -- stale in-flight run
  ('d0000000-0000-4000-8000-000000000001', '10 minutes', true,  '2000-01-06'), -- plainly due
  ('d0000000-0000-4000-8000-000000000008', '60 minutes', true,  '2000-01-07'), -- last run finished
  ('d0000000-0000-4000-8000-000000000002', '30 minutes', true,  now() + interval '1 hour'); -- not due yet

insert into auto_sync.runs (id, user_id, trigger, status, created_at) values
  ('e0000000-0000-4000-8000-000000000004', 'd0000000-0000-4000-8000-000000000004', 'schedule', 'dispatched',
   now() - interval '1 minute'),
  ('e0000000-0000-4000-8000-000000000006', 'd0000000-0000-4000-8000-000000000006', 'manual', 'accepted',
   now() - interval '19 minutes'),
  ('e0000000-0000-4000-8000-000000000007', 'd0000000-0000-4000-8000-000000000007', 'schedule', 'running',
   now() - interval '1 minute'),
  ('e0000000-0000-4000-8000-000000000005', 'd0000000-0000-4000-8000-000000000005', 'schedule', 'running',
   now() - interval '21 minutes'),
  ('e0000000-0000-4000-8000-000000000008', 'd0000000-0000-4000-8000-000000000008', 'schedule', 'succeeded',
   now() - interval '1 minute');

-- Other users' due schedules: out of the way for this transaction only.
update auto_sync.schedules s set next_run_at = now() + interval '1 day'
 where s.enabled and s.next_run_at <= now()
   and s.user_id::text not like 'd0000000-0000-4000-8000-0000000000__';

create temp table t_ticks (tick text primary key, dispatched integer) on commit drop;
create temp table t_runs_before on commit drop as select r.id from auto_sync.runs r;

insert into t_ticks select 'first', auto_sync.dispatch();

-------------------------------------------------------------------------------
-- Which schedules the first tick picked
-------------------------------------------------------------------------------
select is((select dispatched from t_ticks where tick = 'first'), 3, 'first tick: dispatch() returns 3');
select is(
  (select count(*)::integer from auto_sync.runs r
    where r.id not in (select id from t_runs_before) and r.created_at = now()),
  3, 'first tick: exactly 3 new run rows');
select is(
  array(select r.user_id::text from auto_sync.runs r
         where r.id not in (select id from t_runs_before)
         order by r.user_id),
  array['d0000000-0000-4000-8000-000000000001',
        'd0000000-0000-4000-8000-000000000005',
        'd0000000-0000-4000-8000-000000000008'],
  'first tick: runs only for the due, enabled users with nothing (fresh) in flight');

select is((select count(*) from auto_sync.runs where user_id = 'd0000000-0000-4000-8000-000000000002'), 0::bigint,
          'a schedule not yet due gets no run');
select is((select count(*) from auto_sync.runs where user_id = 'd0000000-0000-4000-8000-000000000003'), 0::bigint,
          'a disabled schedule gets no run');
select is(
  array(select r.id::text from auto_sync.runs r
         where r.user_id in ('d0000000-0000-4000-8000-000000000004', 'd0000000-0000-4000-8000-000000000006',
                             'd0000000-0000-4000-8000-000000000007')
         order by r.id),
  array['e0000000-0000-4000-8000-000000000004', 'e0000000-0000-4000-8000-000000000006',
        'e0000000-0000-4000-8000-000000000007'],
  'a user with a dispatched, accepted or running run in flight gets no new run');
select is((select count(*) from auto_sync.runs where user_id = 'd0000000-0000-4000-8000-000000000005'), 2::bigint,
          'a run in flight for longer than in_flight_timeout no longer blocks');
select is(
  array(select format('%s|%s|%s', s.next_run_at, s.last_run_id, s.updated_at = now()) from auto_sync.schedules s
         where s.user_id in ('d0000000-0000-4000-8000-000000000003', 'd0000000-0000-4000-8000-000000000004',
                             'd0000000-0000-4000-8000-000000000006', 'd0000000-0000-4000-8000-000000000007')
         order by s.user_id),
  array['2000-01-01 00:00:00+00||t', '2000-01-02 00:00:00+00||t', '2000-01-03 00:00:00+00||t',
        '2000-01-04 00:00:00+00||t'],
  'schedules not picked keep their next_run_at and have no last_run_id');

-- The new runs and their schedules.
create temp table t_req on commit drop as
select r.user_id, r.id as run_id, r.trigger, r.status, r.scheduled_for, r.dispatched_at, r.net_request_id,
       s.every, s.next_run_at, s.last_run_id,
       q.method, q.url, q.headers, q.body, q.timeout_milliseconds,
       convert_from(q.body, 'UTF8') as body_text
  from auto_sync.runs r
  join auto_sync.schedules s on s.user_id = r.user_id
  left join net.http_request_queue q on q.id = r.net_request_id
 where r.id not in (select id from t_runs_before);

select is(
  array(select format('%s|%s|%s|%s|%s', t.trigger, t.status, t.net_request_id is not null,
                      t.dispatched_at = now(), t.last_run_id = t.run_id)
          from t_req t order by t.user_id),
  array['schedule|dispatched|t|t|t', 'schedule|dispatched|t|t|t', 'schedule|dispatched|t|t|t'],
  'each new run: trigger schedule, status dispatched, net_request_id set, dispatched now, schedule.last_run_id points at it');
select is(
  array(select t.scheduled_for::text from t_req t order by t.user_id),
  array['2000-01-06 00:00:00+00', '2000-01-05 00:00:00+00', '2000-01-07 00:00:00+00'],
  'each new run records the next_run_at it was scheduled for');
select is(
  array(select format('%s|%s', t.next_run_at >= now() + t.every, t.next_run_at <= now() + t.every * 1.5)
          from t_req t order by t.user_id),
  array['t|t', 't|t', 't|t'],
  'next_run_at moves to between now() + every and now() + every * (1 + jitter_fraction)');
select is((select count(*) from t_req t where t.url is null), 0::bigint,
          'every new run has its request in net.http_request_queue (matched by net_request_id)');

-------------------------------------------------------------------------------
-- The queued request (user ...01)
-------------------------------------------------------------------------------
select is((select t.url from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
          'https://example.supabase.co/functions/v1/cron-auto-sync', 'request url is settings.endpoint_url');
select is((select t.method from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
          'POST', 'request method is POST');
select is((select t.timeout_milliseconds from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
          7000, 'request timeout is settings.request_timeout_ms');
select is((select t.headers ->> 'Content-Type' from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
          'application/json', 'header Content-Type is application/json');
select is((select t.headers ->> 'webhook-id' from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
          (select t.run_id::text from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
          'header webhook-id is the run id');
select is((select t.headers ->> 'webhook-timestamp' from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
          floor(extract(epoch from now()))::bigint::text, 'header webhook-timestamp is now() in unix seconds');
select is((select t.headers ->> 'webhook-timestamp' from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
          (select t.body_text::jsonb ->> 'iat' from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
          'header webhook-timestamp equals the iat claim');
select matches((select t.headers ->> 'webhook-signature' from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
               '^v1,[A-Za-z0-9+/]{43}=$', 'header webhook-signature is one v1,<base64 HMAC-SHA256>');
select is(
  (select array_agg(k order by k) from t_req t, jsonb_object_keys(t.headers) k
    where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
  array['Content-Type', 'webhook-id', 'webhook-signature', 'webhook-timestamp'],
  'headers are exactly Content-Type and the three webhook-* headers');

select is(
  (select t.body_text::jsonb from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
  (select jsonb_build_object(
            'aud', 'cron-auto-sync', 'scope', 'import-emails',
            'sub', 'd0000000-0000-4000-8000-000000000001',
            'run_id', t.run_id,
            'iat', floor(extract(epoch from now()))::bigint,
            'exp', floor(extract(epoch from now()))::bigint + 300)
     from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
  'body is exactly {aud: cron-auto-sync, scope: import-emails, sub, run_id, iat: now, exp: iat + 300}');
select is(
  (select (t.body_text::jsonb ->> 'exp')::bigint - (t.body_text::jsonb ->> 'iat')::bigint
     from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
  300::bigint, 'exp - iat is settings.request_ttl (300 s)');
select is(
  (select t.body_text from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
  (select (t.body_text::jsonb)::text from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
  'body bytes are the UTF-8 of jsonb::text (what the signature covers)');
select is(
  array(select format('%s|%s', t.body_text::jsonb ->> 'sub' = t.user_id::text,
                      t.body_text::jsonb ->> 'run_id' = t.run_id::text)
          from t_req t order by t.user_id),
  array['t|t', 't|t', 't|t'],
  'each request''s sub and run_id claims name its own user and run');

-- The signature, recomputed.
select is(
  (select t.headers ->> 'webhook-signature' from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
  (select auto_sync.sign(t.run_id::text, (t.headers ->> 'webhook-timestamp')::bigint, t.body_text,
                         auto_sync.signing_keys())
     from t_req t where t.user_id = 'd0000000-0000-4000-8000-000000000001'),
  'webhook-signature equals auto_sync.sign(id, timestamp, stored body, signing_keys())');
select is(
  array(select t.headers ->> 'webhook-signature' from t_req t order by t.user_id),
  array(select (select string_agg(
                         'v1,' || encode(hmac(convert_to(t.run_id::text || '.' || (t.headers ->> 'webhook-timestamp')
                                                         || '.' || t.body_text, 'UTF8'),
                                              decode(substr(s.decrypted_secret, 7), 'base64'), 'sha256'), 'base64'),
                         ' ' order by s.created_at desc, s.name)
                  from vault.decrypted_secrets s where starts_with(s.name, 'auto_sync_signing_key:'))
          from t_req t order by t.user_id),
  'every webhook-signature equals HMAC-SHA256(decoded Vault key, "id.timestamp.body") computed independently');
select is(
  auto_sync.sign('msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}',
                 array[decode('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64')]),
  'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
  'auto_sync.sign reproduces the Standard Webhooks known-answer vector');
select is(
  auto_sync.sign('msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}',
                 array[decode('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'), '\x00'::bytea]),
  'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,'
    || encode(hmac('msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}'::bytea, '\x00'::bytea, 'sha256'), 'base64'),
  'auto_sync.sign with two keys: space-separated, in key order');

-- No secret in the queue or in pg_cron.
select is(
  (select count(*) from t_req t, vault.decrypted_secrets s
    where starts_with(s.name, 'auto_sync_signing_key:')
      and (position(s.decrypted_secret in t.url || t.headers::text || t.body_text) > 0
           or position(substr(s.decrypted_secret, 7) in t.url || t.headers::text || t.body_text) > 0
           or position(encode(decode(substr(s.decrypted_secret, 7), 'base64'), 'hex')
                       in t.url || t.headers::text || t.body_text) > 0)),
  0::bigint,
  'no queued request holds the Vault secret, its base64 key part or the key in hex (url, headers, body)');
select is(
  (select count(*) from t_req t where t.headers::text || t.body_text like '%whsec\_%'),
  0::bigint, 'no queued request contains whsec_');
select is((select count(*) from cron.job j where j.jobname = 'auto-sync-dispatch'), 1::bigint,
          'exactly one pg_cron job auto-sync-dispatch');
select is((select j.schedule from cron.job j where j.jobname = 'auto-sync-dispatch'), '10 seconds',
          'auto-sync-dispatch runs every 10 seconds on pg_cron 1.6');
select is(auto_sync.dispatch_schedule(), '10 seconds', 'dispatch_schedule(): 10 seconds on pg_cron 1.6');
-- An older pg_cron (as on Debian 12): the catalog edit is rolled back with the rest.
create temp table t_cron_version as select extversion from pg_catalog.pg_extension where extname = 'pg_cron';
update pg_catalog.pg_extension set extversion = '1.4' where extname = 'pg_cron';
select is(auto_sync.dispatch_schedule(), '* * * * *', 'dispatch_schedule(): every minute on pg_cron 1.4');
update pg_catalog.pg_extension set extversion = (select extversion from t_cron_version) where extname = 'pg_cron';
select matches((select j.command from cron.job j where j.jobname = 'auto-sync-dispatch'),
               '^\s*select\s+auto_sync\.dispatch\(\)\s*;?\s*$', 'auto-sync-dispatch only calls auto_sync.dispatch()');
select is(
  (select count(*) from cron.job j, vault.decrypted_secrets s
    where j.jobname = 'auto-sync-dispatch' and starts_with(s.name, 'auto_sync_signing_key:')
      and (j.command like '%whsec\_%'
           or position(substr(s.decrypted_secret, 7) in j.command) > 0
           or position(encode(decode(substr(s.decrypted_secret, 7), 'base64'), 'hex') in j.command) > 0)),
  0::bigint, 'the cron job command holds no whsec_ and no key material');

-------------------------------------------------------------------------------
-- accept_request, start_run, finish_run (runs of the first tick)
-------------------------------------------------------------------------------
create temp table t_run on commit drop as
select r.user_id, r.id from auto_sync.runs r where r.id in (select t.run_id from t_req t);

select is(
  auto_sync.accept_request((select id::text from t_run where user_id = 'd0000000-0000-4000-8000-000000000001'),
                           (select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000001'),
                           'd0000000-0000-4000-8000-000000000001'),
  'accepted', 'accept_request: first call is accepted');
select is(
  (select format('%s|%s', r.status, r.accepted_at = now()) from auto_sync.runs r
    where r.id = (select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000001')),
  'accepted|t', 'accept_request: the run moved dispatched -> accepted, accepted_at set');
select is(
  (select count(*) from auto_sync.used_request_ids u
    where u.request_id = (select id::text from t_run where user_id = 'd0000000-0000-4000-8000-000000000001')),
  1::bigint, 'accept_request: the request id is in the replay ledger');
select is(
  auto_sync.accept_request((select id::text from t_run where user_id = 'd0000000-0000-4000-8000-000000000001'),
                           (select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000001'),
                           'd0000000-0000-4000-8000-000000000001'),
  'replayed', 'accept_request: the same request id again is replayed');
select is(
  auto_sync.accept_request(gen_random_uuid()::text,
                           (select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000001'),
                           'd0000000-0000-4000-8000-000000000001'),
  'not_dispatched', 'accept_request: a fresh request id for an already accepted run is not_dispatched');
select is(
  auto_sync.accept_request(gen_random_uuid()::text, gen_random_uuid(), 'd0000000-0000-4000-8000-000000000001'),
  'unknown_run', 'accept_request: an unknown run is unknown_run');
select is(
  auto_sync.accept_request(gen_random_uuid()::text,
                           (select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000005'),
                           'd0000000-0000-4000-8000-000000000001'),
  'wrong_user', 'accept_request: another user''s run is wrong_user');
select is(
  (select r.status from auto_sync.runs r
    where r.id = (select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000005')),
  'dispatched', 'accept_request: wrong_user leaves the run dispatched');
select is(
  auto_sync.accept_request((select id::text from t_run where user_id = 'd0000000-0000-4000-8000-000000000005'),
                           (select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000005'),
                           'd0000000-0000-4000-8000-000000000005'),
  'accepted', 'accept_request: the right user can still have that run accepted');

select is(auto_sync.disable('d0000000-0000-4000-8000-000000000008'), true, 'disable() returns true for an existing schedule');
select is(
  auto_sync.accept_request((select id::text from t_run where user_id = 'd0000000-0000-4000-8000-000000000008'),
                           (select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000008'),
                           'd0000000-0000-4000-8000-000000000008'),
  'schedule_disabled', 'accept_request: schedule disabled after dispatch -> schedule_disabled');
select is(
  (select format('%s|%s|%s', r.status, r.finished_at = now(), r.error) from auto_sync.runs r
    where r.id = (select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000008')),
  'rejected|t|Schedule disabled before the request arrived',
  'accept_request: that run is rejected and finished, with the reason');

select is(auto_sync.start_run((select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000001')),
          true, 'start_run: accepted -> running returns true');
select is(
  (select format('%s|%s', r.status, r.started_at = now()) from auto_sync.runs r
    where r.id = (select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000001')),
  'running|t', 'start_run: the run is running, started_at set');
select is(auto_sync.start_run((select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000001')),
          null, 'start_run: a run that is not accepted (already running) returns null');
select is(auto_sync.start_run((select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000008')),
          null, 'start_run: a rejected run returns null');

select is(
  auto_sync.finish_run((select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000001'),
                       'succeeded', null, '{"imported": 3}'),
  true, 'finish_run: running -> succeeded returns true');
select is(
  (select format('%s|%s|%s|%s', r.status, r.finished_at = now(), r.error, r.details) from auto_sync.runs r
    where r.id = (select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000001')),
  'succeeded|t||{"imported": 3}', 'finish_run: status, finished_at and details recorded');
select is(
  (select format('%s|%s', s.last_outcome, s.last_outcome_at = now()) from auto_sync.schedules s
    where s.user_id = 'd0000000-0000-4000-8000-000000000001'),
  'succeeded|t', 'finish_run: the schedule''s last_outcome is succeeded');
select is(
  auto_sync.finish_run((select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000001'), 'failed'),
  false, 'finish_run: a finished run cannot be finished again');
select is(
  (select s.last_outcome from auto_sync.schedules s where s.user_id = 'd0000000-0000-4000-8000-000000000001'),
  'succeeded', 'finish_run: a refused finish leaves last_outcome alone');
select throws_ok(
  $$select auto_sync.finish_run((select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000005'), 'running')$$,
  '22023', 'Cannot finish run: status "running" is not a final status',
  'finish_run: a non-final status is refused (22023)');
select is(
  auto_sync.finish_run((select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000005'),
                       'failed', 'IMAP login failed'),
  true, 'finish_run: accepted -> failed returns true');
select is(
  (select format('%s|%s|%s', r.status, r.error, s.last_outcome)
     from auto_sync.runs r join auto_sync.schedules s on s.user_id = r.user_id
    where r.id = (select id from t_run where user_id = 'd0000000-0000-4000-8000-000000000005')),
  'failed|IMAP login failed|failed', 'finish_run: failed run keeps its error; the schedule''s last_outcome is failed');

-------------------------------------------------------------------------------
-- Key rotation: a second Vault key -> two signatures, newest first (user ...09)
-------------------------------------------------------------------------------
create temp table t_keys_before on commit drop as select auto_sync.signing_keys() as keys;
select is(cardinality((select keys from t_keys_before)), 1, 'before rotation: one signing key in Vault');

select isnt(vault.create_secret('whsec_' || encode(gen_random_bytes(32), 'base64'), 'auto_sync_signing_key:next'),
            null, 'rotation: a second key auto_sync_signing_key:next is added to Vault');
update auto_sync.settings set batch_limit = 1, jitter_fraction = 0, request_ttl = '2 minutes';
insert into auto_sync.schedules (user_id, every, enabled, next_run_at)
values ('d0000000-0000-4000-8000-000000000009', '20 minutes', true, '2000-02-01');
delete from t_runs_before;
insert into t_runs_before select r.id from auto_sync.runs r;
insert into t_ticks select 'rotation', auto_sync.dispatch();

select is((select dispatched from t_ticks where tick = 'rotation'), 1, 'rotation tick: dispatch() returns 1');

create temp table t_rot on commit drop as
select r.id as run_id, q.headers, convert_from(q.body, 'UTF8') as body_text, s.next_run_at
  from auto_sync.runs r
  join auto_sync.schedules s on s.user_id = r.user_id
  join net.http_request_queue q on q.id = r.net_request_id
 where r.user_id = 'd0000000-0000-4000-8000-000000000009' and r.id not in (select id from t_runs_before);

select is((select count(*) from t_rot), 1::bigint, 'rotation tick: the due user got one run and one request');
select matches((select headers ->> 'webhook-signature' from t_rot),
               '^v1,[A-Za-z0-9+/]{43}= v1,[A-Za-z0-9+/]{43}=$',
               'rotation: webhook-signature has two space-separated v1 entries');
select is(
  (select split_part(headers ->> 'webhook-signature', ' ', 1) from t_rot),
  (select 'v1,' || encode(hmac(convert_to(t.run_id::text || '.' || (t.headers ->> 'webhook-timestamp') || '.' || t.body_text, 'UTF8'),
                               decode(substr(s.decrypted_secret, 7), 'base64'), 'sha256'), 'base64')
     from t_rot t, vault.decrypted_secrets s where s.name = 'auto_sync_signing_key:next'),
  'rotation: the first signature is made with the new key');
select is(
  (select split_part(headers ->> 'webhook-signature', ' ', 2) from t_rot),
  (select auto_sync.sign(t.run_id::text, (t.headers ->> 'webhook-timestamp')::bigint, t.body_text, k.keys)
     from t_rot t, t_keys_before k),
  'rotation: the second signature is made with the old key');
select is(
  (select format('%s|%s', (t.body_text::jsonb ->> 'exp')::bigint - (t.body_text::jsonb ->> 'iat')::bigint,
                 (t.body_text::jsonb ->> 'iat') = (t.headers ->> 'webhook-timestamp'))
     from t_rot t),
  '120|t', 'request_ttl 2 minutes: exp = iat + 120');
select is((select next_run_at from t_rot), now() + interval '20 minutes',
          'jitter_fraction 0: next_run_at is exactly now() + every');
select is(
  (select count(*) from t_rot t, vault.decrypted_secrets s
    where starts_with(s.name, 'auto_sync_signing_key:')
      and (position(s.decrypted_secret in t.headers::text || t.body_text) > 0
           or position(substr(s.decrypted_secret, 7) in t.headers::text || t.body_text) > 0)),
  0::bigint, 'rotation: neither key appears in the request');

-------------------------------------------------------------------------------
-- One bad schedule never stops the tick
-------------------------------------------------------------------------------
-- A row past the bounds (the CHECK is dropped here, inside this rolled-back
-- transaction): its next_run_at overflows, which used to fail the whole tick.
alter table auto_sync.schedules drop constraint schedules_every_check;
insert into auto_sync.schedules (user_id, every, enabled, next_run_at) values
  ('d0000000-0000-4000-8000-000000000041', '300000 years', true, '1998-01-01'),
  ('d0000000-0000-4000-8000-000000000042', '30 minutes', true, '1998-01-02');
update auto_sync.settings set batch_limit = 10;
delete from t_runs_before;
insert into t_runs_before select r.id from auto_sync.runs r;
insert into t_ticks select 'bad row', auto_sync.dispatch();

select ok((select dispatched from t_ticks where tick = 'bad row') >= 1,
          'a schedule whose interval overflows next_run_at does not stop the tick');
select is(
  array(select r.user_id::text from auto_sync.runs r
         where r.id not in (select id from t_runs_before)
           and r.user_id in ('d0000000-0000-4000-8000-000000000041', 'd0000000-0000-4000-8000-000000000042')),
  array['d0000000-0000-4000-8000-000000000042'],
  'the other due schedule is dispatched; the bad one gets no run');
select is(
  (select count(*) from net.http_request_queue q
    where position('d0000000-0000-4000-8000-000000000041' in coalesce(convert_from(q.body, 'UTF8'), '')) > 0),
  0::bigint, 'nothing is queued for the bad schedule');
select is(
  (select format('%s|%s', s.last_error, s.next_run_at = now() + interval '1 hour') from auto_sync.schedules s
    where s.user_id = 'd0000000-0000-4000-8000-000000000041'),
  'Skipped by the dispatcher: this schedule''s settings are invalid|t',
  'the bad schedule is reported on itself and pushed an hour ahead, so it does not slow every tick');
delete from auto_sync.schedules
 where user_id in ('d0000000-0000-4000-8000-000000000041', 'd0000000-0000-4000-8000-000000000042');
alter table auto_sync.schedules add constraint schedules_every_check
  check (auto_sync.interval_problem(every) is null);

-------------------------------------------------------------------------------
-- batch_limit: 2 of 5 due users, oldest first
-------------------------------------------------------------------------------
update auto_sync.settings set batch_limit = 2, jitter_fraction = 0.1;
insert into auto_sync.schedules (user_id, every, enabled, next_run_at) values
  ('d0000000-0000-4000-8000-000000000013', '30 minutes', true, '1999-01-03'),
  ('d0000000-0000-4000-8000-000000000011', '30 minutes', true, '1999-01-01'),
  ('d0000000-0000-4000-8000-000000000015', '30 minutes', true, '1999-01-05'),
  ('d0000000-0000-4000-8000-000000000012', '30 minutes', true, '1999-01-02'),
  ('d0000000-0000-4000-8000-000000000014', '30 minutes', true, '1999-01-04');
delete from t_runs_before;
insert into t_runs_before select r.id from auto_sync.runs r;
insert into t_ticks select 'batch', auto_sync.dispatch();

select is((select dispatched from t_ticks where tick = 'batch'), 2, 'batch_limit 2: dispatch() returns 2');
select is(
  array(select r.user_id::text from auto_sync.runs r where r.id not in (select id from t_runs_before) order by 1),
  array['d0000000-0000-4000-8000-000000000011', 'd0000000-0000-4000-8000-000000000012'],
  'batch_limit 2: exactly 2 runs, for the two most overdue schedules');
select is(
  array(select s.next_run_at::text from auto_sync.schedules s
         where s.user_id in ('d0000000-0000-4000-8000-000000000013', 'd0000000-0000-4000-8000-000000000014',
                             'd0000000-0000-4000-8000-000000000015')
         order by s.user_id),
  array['1999-01-03 00:00:00+00', '1999-01-04 00:00:00+00', '1999-01-05 00:00:00+00'],
  'batch_limit 2: the other three stay due for the next tick');
select is(
  array(select format('%s|%s', s.next_run_at >= now() + s.every, s.next_run_at <= now() + s.every * 1.1)
          from auto_sync.schedules s
         where s.user_id in ('d0000000-0000-4000-8000-000000000011', 'd0000000-0000-4000-8000-000000000012')
         order by s.user_id),
  array['t|t', 't|t'],
  'jitter_fraction 0.1: next_run_at within [now() + every, now() + every * 1.1]');

-------------------------------------------------------------------------------
-- A tick that must send nothing: no endpoint, bad keys
-------------------------------------------------------------------------------
-- Park this file's remaining due schedules; user ...21 is now the only due one here.
update auto_sync.schedules set next_run_at = now() + interval '1 day'
 where user_id::text like 'd0000000-0000-4000-8000-0000000000%' and enabled and next_run_at <= now();
insert into auto_sync.schedules (user_id, every, enabled, next_run_at)
values ('d0000000-0000-4000-8000-000000000021', '30 minutes', true, '1998-01-01');
update auto_sync.settings set endpoint_url = null, batch_limit = 1;

select is(auto_sync.dispatch(), 0, 'no endpoint_url: dispatch() returns 0');
select is((select count(*) from auto_sync.runs r where r.user_id = 'd0000000-0000-4000-8000-000000000021'), 0::bigint,
          'no endpoint_url: no run row');
select is(
  (select count(*) from net.http_request_queue q
    where position('d0000000-0000-4000-8000-000000000021' in coalesce(convert_from(q.body, 'UTF8'), '')) > 0),
  0::bigint, 'no endpoint_url: nothing queued in net.http_request_queue');
select is(
  (select s.next_run_at from auto_sync.schedules s where s.user_id = 'd0000000-0000-4000-8000-000000000021'),
  '1998-01-01 00:00:00+00'::timestamptz, 'no endpoint_url: the schedule stays due');

update auto_sync.settings set endpoint_url = 'https://example.supabase.co/functions/v1/cron-auto-sync';
select isnt(vault.create_secret('sk_live_not_a_webhook_secret', 'auto_sync_signing_key:broken'), null,
            'a malformed key auto_sync_signing_key:broken is added to Vault');
select throws_ok($$select auto_sync.dispatch()$$, 'P0001',
                 'Cannot sign: Vault secret "auto_sync_signing_key:broken" is not a whsec_ key',
                 'malformed Vault key (no whsec_ prefix): dispatch() raises');
select lives_ok($$select vault.update_secret(s.id, 'whsec_c2hvcnQ=') from vault.secrets s
                   where s.name = 'auto_sync_signing_key:broken'$$, 'the malformed key becomes a too-short whsec_ key');
select throws_ok($$select auto_sync.dispatch()$$, 'P0001',
                 'Cannot sign: Vault secret "auto_sync_signing_key:broken" is not a whsec_ key',
                 'malformed Vault key (too short): dispatch() raises');
select is((select count(*) from auto_sync.runs r where r.user_id = 'd0000000-0000-4000-8000-000000000021'), 0::bigint,
          'malformed Vault key: no run row');
select is(
  (select count(*) from net.http_request_queue q
    where position('d0000000-0000-4000-8000-000000000021' in coalesce(convert_from(q.body, 'UTF8'), '')) > 0),
  0::bigint, 'malformed Vault key: nothing queued');

delete from vault.secrets where name = 'auto_sync_signing_key:broken';
do $$
begin
  perform vault.create_secret('whsec_' || encode(extensions.gen_random_bytes(32), 'base64'), 'auto_sync_signing_key:pgtap-' || n)
     from generate_series(1, 2) n;
end
$$;
select throws_like($$select auto_sync.dispatch()$$, 'Cannot sign: % signing keys in Vault; keep at most 3 during a rotation',
                   'more than 3 Vault keys: dispatch() raises');

delete from vault.secrets where starts_with(name, 'auto_sync_signing_key:');
select throws_ok($$select auto_sync.dispatch()$$, 'P0001',
                 'Cannot sign: no Vault secret named "auto_sync_signing_key:<label>"',
                 'no Vault key: dispatch() raises');
select is((select count(*) from auto_sync.runs r where r.user_id = 'd0000000-0000-4000-8000-000000000021'), 0::bigint,
          'no Vault key: no run row');

-- A null user id never matches a run's owner.
select is(
  auto_sync.accept_request(gen_random_uuid()::text,
                           (select r.id from auto_sync.runs r
                             where r.user_id = 'd0000000-0000-4000-8000-000000000011' and r.status = 'dispatched'),
                           null),
  'wrong_user', 'accept_request: a null user id is refused as wrong_user');

select * from finish();
rollback;
