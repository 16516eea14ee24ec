-- Signed auto-sync: truthful run outcomes, retries with backoff, retention.
--
--   auto_sync.reconcile_runs()   postgres only (the maintenance job)
--       runs still `dispatched` whose pg_net response is a timeout / transport error
--       -> failed; whose response is 4xx -> rejected, 5xx (any other non-2xx) -> failed;
--       `dispatched` past settings.ack_deadline -> lost;
--       `accepted` / `running` past settings.in_flight_timeout -> lost.
--       Finished runs are never touched. Returns the counts as jsonb.
--   auto_sync.purge_history()    postgres only (the maintenance job)
--       old runs (each schedule's last run kept), old replay-ledger ids, our cron
--       jobs' cron.job_run_details rows, our old net._http_response rows.
--   auto_sync.record_outcomes(run ids)   postgres only; the schedule side of a finished
--       run (called by reconcile_runs() and auto_sync.finish_run()): last outcome /
--       success / error, the failure counter, backoff, pause.
--   auto_sync.record_outcomes_each(run ids, caller)   the same for the reconcilers: run by
--       run when one schedule breaks the bookkeeping, skipping and reporting that one.
--   auto_sync.describe_interval(interval)   an interval in words, for run errors.
--   auto_sync.reconcile_stopped_runs()   postgres only; runs still `running` 5 s past
--       runs.must_finish_by (their function instance is gone) -> lost, leases released.
--   pg_cron job auto-sync-maintenance   every 10 minutes: reconcile, then purge.
--   pg_cron job auto-sync-stopped-runs  every minute: reconcile_stopped_runs().
--
-- The settings these read (ack_deadline, max_consecutive_failures, *_retention) and
-- the schedule columns they write are defined with their tables in ..._auto_sync_tables.sql.
--
-- Both internals run from a second pg_cron job, `auto-sync-maintenance`, every 10
-- minutes, not from dispatch(): dispatch() stays one cheap statement per tick (its
-- cost is what the scale benchmark measures), a failing purge can never stop
-- dispatching, and 10 minutes is far inside pg_net's 6-hour response TTL.

-------------------------------------------------------------------------------
-- Helpers
-------------------------------------------------------------------------------
create function auto_sync.describe_interval(p_interval interval) returns text
language sql immutable strict set search_path = ''
as $$
  select case
           when x.s > 0 and x.s % 86400 = 0 then (x.s / 86400) || case when x.s = 86400 then ' day' else ' days' end
           when x.s > 0 and x.s % 3600 = 0 then (x.s / 3600) || case when x.s = 3600 then ' hour' else ' hours' end
           when x.s > 0 and x.s % 60 = 0 then (x.s / 60) || case when x.s = 60 then ' minute' else ' minutes' end
           else x.s || case when x.s = 1 then ' second' else ' seconds' end
         end
    from (select floor(extract(epoch from p_interval))::bigint as s) x
$$;
comment on function auto_sync.describe_interval(interval) is
  'An interval in words for run errors: ''5 minutes'', ''1 hour'', ''90 seconds''.';

-- The schedule side of runs that just finished (any final status). Per user, the
-- newest of the given runs decides:
--   succeeded | partial | skipped  -> consecutive_failures = 0 (a pause stays until enable())
--   failed | rejected | lost, scheduled run, schedule enabled
--                                  -> consecutive_failures += scheduled failures given;
--                                     next_run_at = now() + least(every, 1 min * 2^(n-1))
--                                                   * (1 + jitter_fraction * random());
--                                     at settings.max_consecutive_failures: paused
--   a failed manual run ("sync now") only records the error.
create function auto_sync.record_outcomes(p_run_ids uuid[]) returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_settings auto_sync.settings;
  v_count integer;
begin
  select * into strict v_settings from auto_sync.settings;

  with finished as (
    select r.id, r.user_id, r.trigger, r.status, r.error, r.created_at,
           r.status in ('failed', 'rejected', 'lost') as is_failure
      from auto_sync.runs r
     where r.id = any (p_run_ids)
       and r.status in ('succeeded', 'partial', 'skipped', 'failed', 'rejected', 'lost')
  ), newest as (
    select distinct on (f.user_id)
           f.user_id, f.trigger, f.status, f.is_failure,
           left(coalesce(nullif(f.error, ''), 'Run ended ' || f.status), 500) as error,
           count(*) filter (where f.is_failure and f.trigger = 'schedule')
             over (partition by f.user_id) as scheduled_failures
      from finished f
     order by f.user_id, f.created_at desc, f.id
  ), computed as (
    select n.*,
           (n.is_failure and n.trigger = 'schedule' and s.enabled) as counts,
           case when not n.is_failure then 0
                when n.trigger = 'schedule' and s.enabled then s.consecutive_failures + n.scheduled_failures::integer
                else s.consecutive_failures end as failures
      from newest n
      join auto_sync.schedules s on s.user_id = n.user_id
  )
  update auto_sync.schedules s
     set last_outcome = c.status,
         last_outcome_at = now(),
         last_success_at = case when c.status in ('succeeded', 'partial') then now() else s.last_success_at end,
         last_error = case when c.is_failure then c.error else s.last_error end,
         last_error_at = case when c.is_failure then now() else s.last_error_at end,
         consecutive_failures = c.failures,
         enabled = case when c.counts and c.failures >= v_settings.max_consecutive_failures then false
                        else s.enabled end,
         paused_reason = case when c.counts and c.failures >= v_settings.max_consecutive_failures
                              then format('Paused after %s failed runs in a row: %s', c.failures, c.error)
                              else s.paused_reason end,
         next_run_at = case when c.counts
                            then now() + least(s.every, interval '1 minute' * power(2, least(c.failures - 1, 20)))
                                         * (1 + v_settings.jitter_fraction * random())
                            else s.next_run_at end,
         updated_at = now()
    from computed c
   where s.user_id = c.user_id;

  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function auto_sync.record_outcomes(uuid[]) is
  'Schedule bookkeeping for runs that just finished: last outcome, last success, last error; failure counter, capped exponential backoff with jitter (base 1 minute, cap every), pause after settings.max_consecutive_failures. Returns schedules updated.';

-- For the reconcilers, which end many users' runs at once: one schedule whose values
-- break the bookkeeping must not stop the others'. On a data error, run by run; the
-- bad ones are skipped and reported. Every run keeps its true outcome either way.
create function auto_sync.record_outcomes_each(p_run_ids uuid[], p_caller text) returns void
language plpgsql volatile security definer set search_path = ''
as $$
begin
  if cardinality(p_run_ids) = 0 then return; end if;
  begin
    perform auto_sync.record_outcomes(p_run_ids);
  exception when data_exception or integrity_constraint_violation then
    raise warning '%: recording outcomes failed (%); one run at a time', p_caller, sqlerrm;
    for i in 1 .. cardinality(p_run_ids) loop
      begin
        perform auto_sync.record_outcomes(array[p_run_ids[i]]);
      exception when data_exception or integrity_constraint_violation then
        raise warning '%: skipped the schedule bookkeeping of run %: %', p_caller, p_run_ids[i], sqlerrm;
      end;
    end loop;
  end;
end
$$;
comment on function auto_sync.record_outcomes_each(uuid[], text) is
  'record_outcomes for the reconcilers: on a data error, run by run, skipping and reporting (WARNING, naming p_caller) the runs whose schedule breaks the bookkeeping.';

-------------------------------------------------------------------------------
-- Truthful outcomes
-------------------------------------------------------------------------------
-- When pg_net's answer to a run's request may have been created: from dispatch to a
-- minute past the ack deadline. pg_net's queue and id sequence are UNLOGGED, so after
-- a crash ids start again and a new request can reuse a lost one's id: a response
-- belongs to a run only if its id matches AND it falls in this window. Used by
-- reconcile_runs() (whose answer) and purge_history() (whose response to delete).
create function auto_sync.response_window(p_dispatched_at timestamptz, p_ack_deadline interval)
returns tstzrange
language sql immutable strict parallel safe set search_path = ''
as $$ select tstzrange(p_dispatched_at, p_dispatched_at + p_ack_deadline + interval '1 minute', '[]') $$;
comment on function auto_sync.response_window(timestamptz, interval) is
  'The time range in which pg_net''s response to a request dispatched at p_dispatched_at may be created (to ack_deadline + 1 minute). With the id, what ties a net._http_response row to a run.';

create function auto_sync.reconcile_runs() returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_settings auto_sync.settings;
  v_oldest timestamptz;
  v_ids uuid[] := '{}'::uuid[];
  v_step_ids uuid[];
  v_failed integer := 0;
  v_rejected integer := 0;
  v_unacknowledged integer := 0;
  v_unfinished integer := 0;
begin
  select * into strict v_settings from auto_sync.settings;

  -- (a) pg_net's answer for runs the function has not accepted. Only responses
  -- created since the oldest such run are read (pg_net indexes `created`, not `id`),
  -- so the cost follows the number of runs in flight, not pg_net's 6-hour backlog.
  -- A 2xx answer is left alone: the function accepted and the run row says the rest.
  select min(coalesce(r.dispatched_at, r.created_at)) into v_oldest
    from auto_sync.runs r
   where r.status = 'dispatched' and r.net_request_id is not null;
  if v_oldest is not null then
    with answered as (
      select distinct on (r.id) r.id,
             case when coalesce(h.timed_out, false) or h.error_msg is not null then 'failed'
                  when h.status_code between 400 and 499 then 'rejected'
                  else 'failed' end as status,
             case when coalesce(h.timed_out, false) or h.error_msg is not null then
                    'Request not delivered: ' || left(regexp_replace(
                      coalesce(nullif(h.error_msg, ''), 'timed out'), '[[:cntrl:]]+', ' ', 'g'), 200)
                  when h.status_code between 400 and 499 then 'Function refused the request: HTTP ' || h.status_code
                  when h.status_code between 500 and 599 then 'Function failed: HTTP ' || h.status_code
                  else 'Unexpected response from the function: HTTP ' || h.status_code end as error
        from auto_sync.runs r
        join net._http_response h on h.id = r.net_request_id
       where r.status = 'dispatched'
         and h.created >= v_oldest - interval '1 minute'
         -- An answer outside the window is not this run's (a reused id after a crash);
         -- the run is left to step (b) and ends `lost`, the truth.
         and h.created <@ auto_sync.response_window(coalesce(r.dispatched_at, r.created_at), v_settings.ack_deadline)
         and (coalesce(h.timed_out, false) or h.error_msg is not null
              or h.status_code not between 200 and 299)
       order by r.id, h.created desc
    ), updated as (
      update auto_sync.runs r
         set status = a.status, error = a.error, finished_at = now()
        from answered a
       where r.id = a.id and r.status = 'dispatched'
      returning r.id, r.status
    )
    select coalesce(array_agg(u.id), '{}'::uuid[]),
           count(*) filter (where u.status = 'failed'),
           count(*) filter (where u.status = 'rejected')
      into v_step_ids, v_failed, v_rejected
      from updated u;
    v_ids := v_ids || v_step_ids;
  end if;

  -- (b) Never acknowledged: the request's lifetime is over, the function will refuse it.
  with updated as (
    update auto_sync.runs r
       set status = 'lost', finished_at = now(),
           error = 'No acknowledgement from the function within ' || auto_sync.describe_interval(v_settings.ack_deadline)
     where r.status = 'dispatched'
       and coalesce(r.dispatched_at, r.created_at) < now() - v_settings.ack_deadline
    returning r.id
  )
  select coalesce(array_agg(u.id), '{}'::uuid[]), count(*) into v_step_ids, v_unacknowledged from updated u;
  v_ids := v_ids || v_step_ids;

  -- (c) Accepted or started, never finished (the function was killed, the import hung).
  -- Measured from created_at, like dispatch()'s in-flight check.
  with updated as (
    update auto_sync.runs r
       set status = 'lost', finished_at = now(),
           error = 'Import did not finish within ' || auto_sync.describe_interval(v_settings.in_flight_timeout)
     where r.status in ('accepted', 'running')
       and r.created_at < now() - v_settings.in_flight_timeout
    returning r.id
  )
  select coalesce(array_agg(u.id), '{}'::uuid[]), count(*) into v_step_ids, v_unfinished from updated u;
  v_ids := v_ids || v_step_ids;

  perform auto_sync.record_outcomes_each(v_ids, 'auto_sync.reconcile_runs');

  return jsonb_build_object(
    'failed', v_failed,
    'rejected', v_rejected,
    'lost_unacknowledged', v_unacknowledged,
    'lost_unfinished', v_unfinished);
end
$$;
comment on function auto_sync.reconcile_runs() is
  'Run by the pg_cron job auto-sync-maintenance: gives unfinished runs their true outcome from pg_net''s responses (timeout/error -> failed, 4xx -> rejected, 5xx -> failed) and deadlines (not acknowledged within settings.ack_deadline, or not finished within settings.in_flight_timeout -> lost), then schedules retries. Never touches finished runs. Returns {failed, rejected, lost_unacknowledged, lost_unfinished}.';



-------------------------------------------------------------------------------
-- Retention
-------------------------------------------------------------------------------
-- Each part deletes at most c_batch rows per call (every 10 minutes: 14.4 M a day),
-- so one call stays short however far behind it is.
create function auto_sync.purge_history() returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  c_batch constant integer := 100000;
  v_settings auto_sync.settings;
  v_responses integer := 0;
  v_runs integer := 0;
  v_ledger integer := 0;
  v_cron integer := 0;
begin
  select * into strict v_settings from auto_sync.settings;

  -- Our pg_net responses older than 1 day (pg_net itself drops every response after
  -- pg_net.ttl, 6 hours by default; this only matters when that is raised or its
  -- worker is stopped). Other extensions' and applications' responses are left alone:
  -- a response is ours when a run has its id and it came within that run's
  -- response_window (ids restart after a crash). Before the runs, while their
  -- net_request_id still identifies them.
  delete from net._http_response h
   where h.ctid = any (array(
           select h2.ctid from net._http_response h2
            where h2.created < now() - interval '1 day'
              and exists (select 1 from auto_sync.runs r
                           where r.net_request_id = h2.id
                             and h2.created <@ auto_sync.response_window(coalesce(r.dispatched_at, r.created_at),
                                                                         v_settings.ack_deadline))
            limit c_batch));
  get diagnostics v_responses = row_count;

  -- Finished runs past retention; the row each schedule points at stays.
  delete from auto_sync.runs r
   where r.id = any (array(
           select r2.id from auto_sync.runs r2
            where r2.created_at < now() - v_settings.run_retention
              and r2.status in ('succeeded', 'partial', 'skipped', 'failed', 'rejected', 'lost')
              and not exists (select 1 from auto_sync.schedules s where s.last_run_id = r2.id)
            order by r2.created_at
            limit c_batch));
  get diagnostics v_runs = row_count;

  delete from auto_sync.used_request_ids u
   where u.request_id = any (array(
           select u2.request_id from auto_sync.used_request_ids u2
            where u2.used_at < now() - v_settings.ledger_retention
            order by u2.used_at
            limit c_batch));
  get diagnostics v_ledger = row_count;

  -- Our two jobs' history only (cron.job_run_details repeats each command).
  begin
    delete from cron.job_run_details d
     where d.jobid in (select j.jobid from cron.job j
                        where j.jobname in ('auto-sync-dispatch', 'auto-sync-maintenance',
                                            'auto-sync-stopped-runs'))
       and coalesce(d.end_time, d.start_time) < now() - v_settings.cron_history_retention;
    get diagnostics v_cron = row_count;
  exception when insufficient_privilege then
    raise warning 'auto_sync.purge_history: cannot delete from cron.job_run_details: %', sqlerrm;
  end;

  return jsonb_build_object('runs', v_runs, 'request_ids', v_ledger,
                            'cron_run_details', v_cron, 'http_responses', v_responses);
end
$$;
comment on function auto_sync.purge_history() is
  'Run by the pg_cron job auto-sync-maintenance: deletes finished runs older than settings.run_retention (each schedule''s last run kept), replay-ledger ids older than settings.ledger_retention, auto-sync-dispatch/-maintenance cron.job_run_details rows older than settings.cron_history_retention, and our net._http_response rows older than 1 day; at most 100,000 rows of each per call. Returns the counts.';

revoke execute on function auto_sync.describe_interval(interval) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.response_window(timestamptz, interval) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.record_outcomes(uuid[]) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.record_outcomes_each(uuid[], text) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.reconcile_runs() from public, anon, authenticated, service_role;
revoke execute on function auto_sync.purge_history() from public, anon, authenticated, service_role;

-------------------------------------------------------------------------------
-- Runs whose function instance a runtime limit ended (edge runtime: the wall clock,
-- 150 s free / 400 s paid, at the latest; supabase/edge-runtime
-- crates/base/src/worker/supervisor/strategy_per_worker.rs): lost within a minute,
-- not after in_flight_timeout. The importer records the instance's end in
-- runs.must_finish_by when it starts a run (start_run).
-------------------------------------------------------------------------------
create function auto_sync.reconcile_stopped_runs() returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_ids uuid[];
begin
  with updated as (
    update auto_sync.runs r
       set status = 'lost', finished_at = now(),
           error = 'The function instance ended (a runtime limit) before the run finished; the next run continues'
     where r.status = 'running'
       and r.must_finish_by < now() - interval '5 seconds'
    returning r.id
  )
  select coalesce(array_agg(u.id), '{}'::uuid[]) into v_ids from updated u;

  -- Their mailbox leases died with them: the next run may start at once.
  update public.mailboxes m
     set import_run_id = null, import_lease_until = null
   where m.import_run_id = any (v_ids);

  perform auto_sync.record_outcomes_each(v_ids, 'auto_sync.reconcile_stopped_runs');

  return cardinality(v_ids);
end
$$;
comment on function auto_sync.reconcile_stopped_runs() is
  'Run every minute by the pg_cron job auto-sync-stopped-runs: runs still running 5 seconds past must_finish_by (their function instance is gone) -> lost, their mailbox leases released, with the schedule bookkeeping (record_outcomes). Returns the runs called lost.';
revoke execute on function auto_sync.reconcile_stopped_runs() from public, anon, authenticated, service_role;

-------------------------------------------------------------------------------
-- The maintenance job, installed idempotently. Its command holds no secret.
-------------------------------------------------------------------------------
select cron.unschedule(jobid) from cron.job where jobname = 'auto-sync-maintenance';
select cron.schedule('auto-sync-maintenance', '*/10 * * * *',
                     'select auto_sync.reconcile_runs(); select auto_sync.purge_history();');
select cron.unschedule(jobid) from cron.job where jobname = 'auto-sync-stopped-runs';
select cron.schedule('auto-sync-stopped-runs', '* * * * *', 'select auto_sync.reconcile_stopped_runs()');
