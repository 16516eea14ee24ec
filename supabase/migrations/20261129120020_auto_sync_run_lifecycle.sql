-- Signed auto-sync: the run's lifecycle, every state change of auto_sync.runs in one place.
--
--   dispatched   auto_sync.record_dispatched_runs(...)    dispatch() queued signed requests:
--                                                        the run rows, the schedules' next run
--   accepted     auto_sync.accept_request(...)            cron-auto-sync, after the HMAC checks
--                auto_sync.request_manual_run(user)       import-emails "sync now" (a run born accepted)
--   running      auto_sync.start_run(run, must_finish_by) the importer starts
--   succeeded | partial | skipped | failed
--                auto_sync.finish_run(run, status, error, details)   the importer ends it
--   failed | rejected | lost
--                auto_sync.reconcile_runs()               pg_net's answer or a deadline says so
--                                                        (pg_cron job auto-sync-maintenance,
--                                                        in ..._auto_sync_maintenance.sql)
--   lost         auto_sync.reconcile_stopped_runs()       the function instance is gone
--                                                        (pg_cron job auto-sync-stopped-runs)
--
-- and the schedule's side of a run that ended: auto_sync.record_outcomes (last outcome,
-- failure counter, backoff, pause, follow-up), auto_sync.record_outcomes_each (what every
-- caller uses: run by run when one schedule breaks it), auto_sync.mark_schedule_broken
-- (such a schedule: reported and pushed an hour ahead); auto_sync.runs_in_flight (the one
-- definition of a run in flight). The next run's time always comes
-- from auto_sync.next_run_at() (..._auto_sync_next_run.sql).
--
-- The settings these read (ack_deadline, in_flight_timeout, max_consecutive_failures,
-- jitter_fraction) are defined with their tables in ..._auto_sync_tables.sql.

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

-- When pg_net's answer to a run's request may have been created: from dispatch to a
-- minute past the ack deadline. pg_net's queue and id sequence are UNLOGGED, so after
-- a crash ids start again and a new request can reuse a lost one's id: a response
-- belongs to a run only if its id matches AND it falls in this window. Used by
-- reconcile_runs() (whose answer) and purge_history() (whose response to delete, ..._auto_sync_maintenance.sql).
create function auto_sync.response_window(p_dispatched_at timestamptz, p_ack_deadline interval)
returns tstzrange
language sql immutable strict parallel safe set search_path = ''
as $$ select tstzrange(p_dispatched_at, p_dispatched_at + p_ack_deadline + interval '1 minute', '[]') $$;
comment on function auto_sync.response_window(timestamptz, interval) is
  'The time range in which pg_net''s response to a request dispatched at p_dispatched_at may be created (to ack_deadline + 1 minute). With the id, what ties a net._http_response row to a run.';

-- The one definition of "a run in flight": dispatched, accepted or running, and younger
-- than settings.in_flight_timeout (an older one is left to reconcile_runs). dispatch()
-- sends nothing to a user with one (due_schedules), and "sync now" is refused meanwhile
-- (request_manual_run). A plain view: the planner flattens it into both queries.
create view auto_sync.runs_in_flight as
  select r.id, r.user_id, r.trigger, r.status, r.created_at
    from auto_sync.runs r
   where r.status in ('dispatched', 'accepted', 'running')
     and r.created_at > now() - (select t.in_flight_timeout from auto_sync.settings t);
comment on view auto_sync.runs_in_flight is
  'Runs in flight: dispatched, accepted or running, younger than settings.in_flight_timeout. Blocks the next dispatch and "sync now" for their user.';
revoke all on auto_sync.runs_in_flight from public, anon, authenticated, service_role;

-- A message count the importer reported in a run's details (see finish_run): 0 when absent
-- or not a non-negative number, so odd details never break the bookkeeping.
create function auto_sync.detail_count(p_details jsonb, p_key text) returns numeric
language sql immutable parallel safe set search_path = ''
as $$
  select case when jsonb_typeof(p_details -> p_key) = 'number' and (p_details ->> p_key)::numeric >= 0
              then (p_details ->> p_key)::numeric else 0 end
$$;
comment on function auto_sync.detail_count(jsonb, text) is
  'A count from a run''s details (requested, fetched, inserted, ...): 0 when absent or not a non-negative number.';

-------------------------------------------------------------------------------
-- dispatched
-------------------------------------------------------------------------------
-- dispatch()'s requests are queued: one run row per request, and each schedule moves on
-- (next_run_at: the 'dispatched' event; last_run_id). Element i of each array is one run.
-- Called inside dispatch()'s statement, so the pg_net insert, the run row and the
-- schedule update commit together or not at all. Returns how many schedules moved on.
create function auto_sync.record_dispatched_runs(
  p_run_ids uuid[], p_user_ids uuid[], p_scheduled_for timestamptz[], p_net_request_ids bigint[],
  p_jitter_fraction numeric
) returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_count integer;
begin
  with new_runs as (
    insert into auto_sync.runs (id, user_id, trigger, status, scheduled_for, dispatched_at, net_request_id)
    select d.run_id, d.user_id, 'schedule', 'dispatched', d.scheduled_for, now(), d.net_request_id
      from unnest(p_run_ids, p_user_ids, p_scheduled_for, p_net_request_ids)
             as d (run_id, user_id, scheduled_for, net_request_id)
    returning id, user_id
  )
  update auto_sync.schedules s
     set next_run_at = auto_sync.next_run_at('dispatched', s.every, s.next_run_at, p_jitter_fraction),
         last_run_id = n.id,
         updated_at = now()
    from new_runs n
   where s.user_id = n.user_id;
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function auto_sync.record_dispatched_runs(uuid[], uuid[], timestamptz[], bigint[], numeric) is
  'For dispatch(): records the runs whose signed requests were just queued (status dispatched) and moves each schedule on (next_run_at by the dispatched rule, last_run_id). Returns the schedules updated.';

-------------------------------------------------------------------------------
-- accepted, running, and the importer's final status
-------------------------------------------------------------------------------
-- Called by cron-auto-sync after the signature, timestamp and claims checked out.
-- One transaction: burn the request id (atomic through the primary key), then
-- accept the run if it is this user's, still dispatched, and its schedule enabled.
-- Returns 'accepted' or the reason for refusal.
create function auto_sync.accept_request(p_request_id text, p_run_id uuid, p_user_id uuid)
returns text
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_run auto_sync.runs;
begin
  insert into auto_sync.used_request_ids (request_id) values (p_request_id)
  on conflict (request_id) do nothing;
  if not found then
    return 'replayed';
  end if;

  select * into v_run from auto_sync.runs where id = p_run_id for update;
  if not found then
    return 'unknown_run';
  end if;
  if p_user_id is null or v_run.user_id is distinct from p_user_id then
    return 'wrong_user';
  end if;
  if v_run.status <> 'dispatched' then
    return 'not_dispatched';
  end if;
  if v_run.trigger = 'schedule' and not exists (
       select 1 from auto_sync.schedules s where s.user_id = v_run.user_id and s.enabled) then
    update auto_sync.runs
       set status = 'rejected', finished_at = now(), error = 'Schedule disabled before the request arrived'
     where id = p_run_id;
    return 'schedule_disabled';
  end if;

  update auto_sync.runs set status = 'accepted', accepted_at = now() where id = p_run_id;
  return 'accepted';
end
$$;
comment on function auto_sync.accept_request(text, uuid, uuid) is
  'For cron-auto-sync after signature checks: records the request id (replays return ''replayed'') and moves the run dispatched -> accepted. Returns accepted | replayed | unknown_run | wrong_user | not_dispatched | schedule_disabled.';

-- "Sync now": refused (with how many seconds to wait) while the user has a run in flight,
-- scheduled or manual, and within p_min_gap of their last manual run. A run in flight
-- usually ends within seconds, so that wait is one dispatch tick (10 s) unless the gap asks
-- for more.
create function auto_sync.request_manual_run(p_user_id uuid, p_min_gap interval default '1 minute')
returns table (run_id uuid, retry_after_seconds integer)
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_last timestamptz;
  v_wait numeric;
begin
  -- Serialise one user's concurrent requests so two cannot both pass the check.
  perform pg_advisory_xact_lock(hashtextextended('auto_sync.manual:' || p_user_id::text, 0));
  select max(r.created_at) into v_last
    from auto_sync.runs r
   where r.user_id = p_user_id and r.trigger = 'manual';
  if v_last is not null and v_last > now() - p_min_gap then
    v_wait := ceil(extract(epoch from v_last + p_min_gap - now()));
  end if;
  if exists (select 1 from auto_sync.runs_in_flight f where f.user_id = p_user_id) then
    v_wait := greatest(v_wait, 10);
  end if;
  if v_wait is not null then
    return query select null::uuid, greatest(1, v_wait)::integer;
    return;
  end if;
  return query
    insert into auto_sync.runs (user_id, trigger, status, accepted_at)
    values (p_user_id, 'manual', 'accepted', now())
    returning id, null::integer;
end
$$;
comment on function auto_sync.request_manual_run(uuid, interval) is
  'For import-emails: records a signed-in user''s "sync now" as an accepted run, unless the user has a run in flight (runs_in_flight) or made one within p_min_gap; then returns how many seconds to wait instead.';

-- p_must_finish_by: when the importer's function instance is gone at the latest
-- (functions-shared/import_emails/isolate_budget.ts), so reconcile_stopped_runs() can call the run lost
-- soon after instead of after settings.in_flight_timeout. Null: nothing recorded.
create function auto_sync.start_run(p_run_id uuid, p_must_finish_by timestamptz default null)
returns boolean
language sql volatile security definer set search_path = ''
as $$
  update auto_sync.runs
     set status = 'running', started_at = now(),
         -- bounded to an hour ahead; null (nothing recorded) stays null
         must_finish_by = case when p_must_finish_by is not null
                               then least(p_must_finish_by, now() + interval '1 hour') end
   where id = p_run_id and status = 'accepted'
  returning true
$$;
comment on function auto_sync.start_run(uuid, timestamptz) is
  'For the importer: accepted -> running, recording when its function instance is gone at the latest (at most an hour ahead). Returns null when the run was not accepted.';

-- The importer's side of a run's end. p_details is the importer's report; the schedule's
-- bookkeeping (record_outcomes) reads these keys, each a non-negative number unless said:
--   requested  message UIDs the run asked the mail server for (FETCH), all folders
--   fetched    messages the server actually sent
--   inserted   new messages stored (not duplicates, not re-mapped after a reset)
--   has_more   boolean: more is waiting on the server than this run imported
-- Rules that follow from them (one home: record_outcomes):
--   requested > 0 and fetched = 0 (succeeded or partial)   a failure for backoff and pause:
--       a server that announces mail and sends none is not making progress
--   partial, has_more, inserted > 0, scheduled run          the next run is brought forward
--       (next_run_at 'follow_up'); a manual run never shortens the interval
-- A missing key counts as 0 (false for has_more).
create function auto_sync.finish_run(
  p_run_id uuid,
  p_status text,
  p_error text default null,
  p_details jsonb default null
) returns boolean
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_run auto_sync.runs;
begin
  if p_status is null or p_status not in ('succeeded', 'partial', 'skipped', 'failed') then
    raise exception 'Cannot finish run: status "%" is not a final status', p_status using errcode = '22023';
  end if;
  update auto_sync.runs
     set status = p_status, finished_at = now(), error = p_error, details = p_details
   where id = p_run_id and status in ('accepted', 'running')
  returning * into v_run;
  if not found then
    return false;
  end if;
  perform auto_sync.record_outcomes_each(array[v_run.id], 'auto_sync.finish_run');
  return true;
end
$$;
comment on function auto_sync.finish_run(uuid, text, text, jsonb) is
  'For the importer: records a run''s final status (succeeded | partial | skipped | failed), error and details ({requested, fetched, inserted, has_more}: see the migration), and the schedule''s outcome (record_outcomes: failure counter, backoff, pause, follow-up; a schedule that breaks it is marked broken).';

revoke execute on function auto_sync.accept_request(text, uuid, uuid) from public, anon, authenticated;
revoke execute on function auto_sync.request_manual_run(uuid, interval) from public, anon, authenticated;
revoke execute on function auto_sync.start_run(uuid, timestamptz) from public, anon, authenticated;
revoke execute on function auto_sync.finish_run(uuid, text, text, jsonb) from public, anon, authenticated;
grant execute on function auto_sync.accept_request(text, uuid, uuid) to service_role;
grant execute on function auto_sync.request_manual_run(uuid, interval) to service_role;
grant execute on function auto_sync.start_run(uuid, timestamptz) to service_role;
grant execute on function auto_sync.finish_run(uuid, text, text, jsonb) to service_role;

-------------------------------------------------------------------------------
-- The schedule's side of a run that ended
-------------------------------------------------------------------------------
-- The schedule side of runs that just finished (any final status). Per user, the
-- newest of the given runs decides:
--   a failure: failed | rejected | lost, or a run that asked for messages and received
--              none (succeeded | partial with details.requested > 0 and fetched = 0)
--   succeeded | partial | skipped, not a failure
--                                  -> consecutive_failures = 0 (a pause stays until enable())
--   a failure of a scheduled run, schedule enabled
--                                  -> consecutive_failures += scheduled failures given;
--                                     next_run_at 'failed' (backoff);
--                                     at settings.max_consecutive_failures: paused
--   a scheduled run, partial, not a failure, details.has_more and details.inserted > 0
--                                  -> next_run_at 'follow_up' (within a minute)
--   a manual run ("sync now")      -> records the outcome and error only: it never counts
--                                     toward the pause nor moves next_run_at
-- next_run_at comes from auto_sync.next_run_at(). The details keys: finish_run.
create function auto_sync.record_outcomes(p_run_ids uuid[]) returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_settings auto_sync.settings;
  v_count integer;
begin
  select * into strict v_settings from auto_sync.settings;

  with finished as (
    select r.id, r.user_id, r.trigger, r.status, r.created_at, r.details,
           r.status in ('failed', 'rejected', 'lost') or x.starved as is_failure,
           r.status in ('succeeded', 'partial') and not x.starved as is_success,
           case when x.starved
                then format('The mail server sent none of the %s message(s) asked for', x.requested)
                else r.error end as error
      from auto_sync.runs r
     cross join lateral (
       select auto_sync.detail_count(r.details, 'requested') as requested,
              r.status in ('succeeded', 'partial')
                and auto_sync.detail_count(r.details, 'requested') > 0
                and auto_sync.detail_count(r.details, 'fetched') = 0 as starved
     ) x
     where r.id = any (p_run_ids)
       and r.status in ('succeeded', 'partial', 'skipped', 'failed', 'rejected', 'lost')
  ), newest as (
    select distinct on (f.user_id)
           f.user_id, f.trigger, f.status, f.is_failure, f.is_success,
           f.trigger = 'schedule' and f.status = 'partial' and not f.is_failure
             and coalesce(f.details -> 'has_more' = 'true'::jsonb, false)
             and auto_sync.detail_count(f.details, 'inserted') > 0 as follow_up,
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
         last_success_at = case when c.is_success then now() else s.last_success_at end,
         last_error = case when c.is_failure then c.error else s.last_error end,
         last_error_at = case when c.is_failure then now() else s.last_error_at end,
         consecutive_failures = c.failures,
         enabled = case when c.counts and c.failures >= v_settings.max_consecutive_failures then false
                        else s.enabled end,
         paused_reason = case when c.counts and c.failures >= v_settings.max_consecutive_failures
                              then format('Paused after %s failed runs in a row: %s', c.failures, c.error)
                              else s.paused_reason end,
         next_run_at = auto_sync.next_run_at(
                         case when c.counts then 'failed' when c.follow_up then 'follow_up' end,
                         s.every, s.next_run_at, v_settings.jitter_fraction, c.failures),
         updated_at = now()
    from computed c
   where s.user_id = c.user_id;

  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function auto_sync.record_outcomes(uuid[]) is
  'Schedule bookkeeping for runs that just finished: last outcome, last success, last error; failure counter (a run that asked for messages and received none counts), capped exponential backoff with jitter (base 1 minute, cap every), pause after settings.max_consecutive_failures; a scheduled partial run that stored new mail and has more brought forward (next_run_at). Manual runs never count nor move the schedule. Returns schedules updated.';

-- For every caller (finish_run, and the reconcilers, which end many users' runs at once):
-- one schedule whose values break the bookkeeping must not stop the others', nor the run's
-- own end. On a data error, run by run; a schedule that still breaks it is skipped,
-- reported (WARNING naming p_caller, its last_error) and pushed an hour ahead
-- (mark_schedule_broken), as dispatch() does. Every run keeps its true outcome either way.
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
        perform auto_sync.mark_schedule_broken(
          (select r.user_id from auto_sync.runs r where r.id = p_run_ids[i]),
          'Skipped by the run bookkeeping: this schedule''s values are invalid');
      end;
    end loop;
  end;
end
$$;
comment on function auto_sync.record_outcomes_each(uuid[], text) is
  'record_outcomes for finish_run and the reconcilers: on a data error, run by run; a schedule that breaks the bookkeeping is skipped, reported (WARNING naming p_caller, last_error) and pushed an hour ahead (mark_schedule_broken).';

-- A schedule whose values break dispatch() or the run bookkeeping (a data error such as an
-- overflowing next_run_at or failure counter): reported on itself (last_error) and pushed
-- an hour ahead, so it neither stops nor slows every tick. The log line is the caller's.
create function auto_sync.mark_schedule_broken(p_user_id uuid, p_error text) returns boolean
language plpgsql volatile security definer set search_path = ''
as $$
begin
  update auto_sync.schedules s
     set next_run_at = auto_sync.next_run_at('broken', s.every, s.next_run_at),
         last_error = p_error, last_error_at = now(), updated_at = now()
   where s.user_id = p_user_id;
  return found;
exception when data_exception or integrity_constraint_violation then
  raise warning 'auto_sync.mark_schedule_broken: could not mark the schedule of user %: %', p_user_id, sqlerrm;
  return false;
end
$$;
comment on function auto_sync.mark_schedule_broken(uuid, text) is
  'A schedule whose values break dispatch() or the run bookkeeping: last_error = p_error, next_run_at an hour ahead (next_run_at ''broken''). False when it could not be marked.';

-------------------------------------------------------------------------------
-- failed, rejected, lost: pg_net's answers and deadlines
-------------------------------------------------------------------------------
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

revoke execute on function auto_sync.describe_interval(interval) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.response_window(timestamptz, interval) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.detail_count(jsonb, text) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.record_dispatched_runs(uuid[], uuid[], timestamptz[], bigint[], numeric) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.record_outcomes(uuid[]) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.mark_schedule_broken(uuid, text) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.record_outcomes_each(uuid[], text) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.reconcile_runs() from public, anon, authenticated, service_role;
revoke execute on function auto_sync.reconcile_stopped_runs() from public, anon, authenticated, service_role;

-- The stopped-runs job, installed idempotently. Its command holds no secret.
select cron.unschedule(jobid) from cron.job where jobname = 'auto-sync-stopped-runs';
select cron.schedule('auto-sync-stopped-runs', '* * * * *', 'select auto_sync.reconcile_stopped_runs()');
