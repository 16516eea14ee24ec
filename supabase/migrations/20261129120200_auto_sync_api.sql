-- Signed auto-sync: the functions that manage schedules and record runs, and the
-- wrappers through which a signed-in user manages their own schedule.
--
--   service role (server code, the Edge Functions):
--     auto_sync.enable(user, every), auto_sync.disable(user)
--     auto_sync.accept_request(request_id, run_id, user)   -- cron-auto-sync, after HMAC
--     auto_sync.request_manual_run(user)                   -- import-emails "sync now", once a minute
--     auto_sync.start_run(run_id, must_finish_by), auto_sync.finish_run(run_id, status, error, details)
--       (finish_run records the schedule side through auto_sync.record_outcomes,
--        in ..._auto_sync_run_outcomes.sql)
--   a signed-in user, for their own schedule only (public, callable over the Data API):
--     public.enable_auto_sync(every), public.disable_auto_sync(), public.get_auto_sync()
--     (SECURITY INVOKER wrappers of the SECURITY DEFINER auto_sync_user_api.* functions)

create function auto_sync.enable(p_user_id uuid, p_every interval default '30 minutes')
returns auto_sync.schedules
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_schedule auto_sync.schedules;
begin
  if p_user_id is null then
    raise exception 'Cannot enable auto-sync: user id is null' using errcode = '22004';
  end if;
  if p_every is null or p_every < interval '1 minute' then
    raise exception 'Cannot enable auto-sync: interval "%" is shorter than 1 minute', p_every
      using errcode = '22023';
  end if;
  if p_every > interval '30 days' then
    raise exception 'Cannot enable auto-sync: interval "%" is longer than 30 days', p_every
      using errcode = '22023';
  end if;
  if not exists (select 1 from auth.users u where u.id = p_user_id) then
    raise exception 'Cannot enable auto-sync: user "%" does not exist', p_user_id using errcode = '23503';
  end if;

  insert into auto_sync.schedules as s (user_id, every, enabled, next_run_at)
  values (p_user_id, p_every, true, now())          -- a new schedule is due at once
  on conflict (user_id) do update
     set every = excluded.every,
         enabled = true,
         -- changing the interval never delays a run; re-enabling (also after a failure
         -- pause) makes it due one interval after the user's last run, never sooner:
         -- disable + enable is no way around the rate limit
         next_run_at = case when s.enabled then least(s.next_run_at, now() + excluded.every)
                            else greatest(now(), (select max(r.created_at) from auto_sync.runs r
                                                   where r.user_id = s.user_id) + excluded.every) end,
         consecutive_failures = 0,
         paused_reason = null,
         updated_at = now()
  returning * into v_schedule;
  return v_schedule;
end
$$;
comment on function auto_sync.enable(uuid, interval) is
  'Creates or re-enables a user''s schedule (due at once when new; when re-enabled, one interval after the user''s last run), clearing a pause and the failure counter. Interval 1 minute to 30 days.';

create function auto_sync.disable(p_user_id uuid) returns boolean
language sql volatile security definer set search_path = ''
as $$
  with disabled as (
    update auto_sync.schedules
       set enabled = false, updated_at = now()
     where user_id = p_user_id
    returning 1
  )
  select exists (select 1 from disabled)
$$;
comment on function auto_sync.disable(uuid) is
  'Disables a user''s schedule. Returns true when there was one. A dispatched request for a disabled schedule is refused by cron-auto-sync.';

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

create function auto_sync.request_manual_run(p_user_id uuid, p_min_gap interval default '1 minute')
returns table (run_id uuid, retry_after_seconds integer)
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_last timestamptz;
begin
  -- Serialise one user's concurrent requests so two cannot both pass the check.
  perform pg_advisory_xact_lock(hashtextextended('auto_sync.manual:' || p_user_id::text, 0));
  select max(r.created_at) into v_last
    from auto_sync.runs r
   where r.user_id = p_user_id and r.trigger = 'manual';
  if v_last is not null and v_last > now() - p_min_gap then
    return query select null::uuid, greatest(1, ceil(extract(epoch from v_last + p_min_gap - now())))::integer;
    return;
  end if;
  return query
    insert into auto_sync.runs (user_id, trigger, status, accepted_at)
    values (p_user_id, 'manual', 'accepted', now())
    returning id, null::integer;
end
$$;
comment on function auto_sync.request_manual_run(uuid, interval) is
  'For import-emails: records a signed-in user''s "sync now" as an accepted run, at most one per p_min_gap; otherwise returns how many seconds to wait.';

-- p_must_finish_by: when the importer's function instance is gone at the latest
-- (functions-shared/isolate_budget.ts), so reconcile_stopped_runs() can call the run lost
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
  perform auto_sync.record_outcomes(array[v_run.id]);
  -- more mail is waiting: continue at the next tick instead of a full interval later
  if p_status = 'partial' and coalesce((p_details ->> 'has_more')::boolean, false) then
    update auto_sync.schedules
       set next_run_at = least(next_run_at, now() + interval '1 minute'), updated_at = now()
     where user_id = v_run.user_id;
  end if;
  return true;
end
$$;
comment on function auto_sync.finish_run(uuid, text, text, jsonb) is
  'For the importer: records a run''s final status (succeeded | partial | skipped | failed), error and details, and the schedule''s outcome (record_outcomes: failure counter, backoff, pause); a partial run with more to import brings the next run forward.';

revoke execute on function auto_sync.enable(uuid, interval) from public, anon, authenticated;
revoke execute on function auto_sync.disable(uuid) from public, anon, authenticated;
revoke execute on function auto_sync.accept_request(text, uuid, uuid) from public, anon, authenticated;
revoke execute on function auto_sync.request_manual_run(uuid, interval) from public, anon, authenticated;
revoke execute on function auto_sync.start_run(uuid, timestamptz) from public, anon, authenticated;
revoke execute on function auto_sync.finish_run(uuid, text, text, jsonb) from public, anon, authenticated;
grant execute on function auto_sync.enable(uuid, interval) to service_role;
grant execute on function auto_sync.disable(uuid) to service_role;
grant execute on function auto_sync.accept_request(text, uuid, uuid) to service_role;
grant execute on function auto_sync.request_manual_run(uuid, interval) to service_role;
grant execute on function auto_sync.start_run(uuid, timestamptz) to service_role;
grant execute on function auto_sync.finish_run(uuid, text, text, jsonb) to service_role;

-------------------------------------------------------------------------------
-- What a signed-in user may do, for themself only (auth.uid()): SECURITY DEFINER
-- functions in the private schema auto_sync_user_api, each called by a SECURITY
-- INVOKER wrapper of the same name in public (what the Data API exposes).
-------------------------------------------------------------------------------
create function auto_sync_user_api.enable_auto_sync(p_every interval)
returns table (enabled boolean, every interval, next_run_at timestamptz)
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_user_id uuid := auth.uid();
  v_schedule auto_sync.schedules;
begin
  if v_user_id is null then
    raise exception 'Cannot enable auto-sync: not signed in' using errcode = '42501';
  end if;
  if p_every is null or p_every < interval '5 minutes' then
    raise exception 'Cannot enable auto-sync: interval "%" is shorter than 5 minutes', p_every
      using errcode = '22023';
  end if;
  v_schedule := auto_sync.enable(v_user_id, p_every);  -- at most 30 days
  return query select v_schedule.enabled, v_schedule.every, v_schedule.next_run_at;
end
$$;
comment on function auto_sync_user_api.enable_auto_sync(interval) is
  'Behind public.enable_auto_sync: turn on auto-sync of the signed-in user''s mailboxes every p_every (5 minutes to 30 days).';

create function auto_sync_user_api.disable_auto_sync() returns boolean
language plpgsql volatile security definer set search_path = ''
as $$
begin
  if auth.uid() is null then
    raise exception 'Cannot disable auto-sync: not signed in' using errcode = '42501';
  end if;
  return auto_sync.disable(auth.uid());
end
$$;
comment on function auto_sync_user_api.disable_auto_sync() is 'Behind public.disable_auto_sync: turn off the signed-in user''s auto-sync.';

create function auto_sync_user_api.get_auto_sync()
returns table (
  enabled boolean, every interval, next_run_at timestamptz,
  last_outcome text, last_outcome_at timestamptz,
  last_success_at timestamptz, last_error text, last_error_at timestamptz,
  consecutive_failures integer, paused_reason text
)
language sql stable security definer set search_path = ''
as $$
  select s.enabled, s.every, s.next_run_at, s.last_outcome, s.last_outcome_at,
         s.last_success_at, s.last_error, s.last_error_at, s.consecutive_failures, s.paused_reason
    from auto_sync.schedules s
   where s.user_id = auth.uid()
$$;
comment on function auto_sync_user_api.get_auto_sync() is
  'Behind public.get_auto_sync: the signed-in user''s own schedule.';

create function public.enable_auto_sync(p_every interval default '30 minutes')
returns table (enabled boolean, every interval, next_run_at timestamptz)
language sql volatile security invoker set search_path = ''
as $$ select * from auto_sync_user_api.enable_auto_sync(p_every) $$;
comment on function public.enable_auto_sync(interval) is
  'Signed-in user: turn on auto-sync of your own mailbox every p_every (5 minutes to 30 days). Re-enabling makes it due one interval after your last run.';

create function public.disable_auto_sync() returns boolean
language sql volatile security invoker set search_path = ''
as $$ select auto_sync_user_api.disable_auto_sync() $$;
comment on function public.disable_auto_sync() is 'Signed-in user: turn off your own auto-sync.';

create function public.get_auto_sync()
returns table (
  enabled boolean, every interval, next_run_at timestamptz,
  last_outcome text, last_outcome_at timestamptz,
  last_success_at timestamptz, last_error text, last_error_at timestamptz,
  consecutive_failures integer, paused_reason text
)
language sql stable security invoker set search_path = ''
as $$ select * from auto_sync_user_api.get_auto_sync() $$;
comment on function public.get_auto_sync() is
  'Signed-in user: your own auto-sync schedule: enabled, interval, next run, last outcome, last success, last error, failures in a row and why it was paused (no row when never enabled).';

-- Supabase grants anon everything in public by default: take it back.
revoke execute on function auto_sync_user_api.enable_auto_sync(interval) from public, anon;
revoke execute on function auto_sync_user_api.disable_auto_sync() from public, anon;
revoke execute on function auto_sync_user_api.get_auto_sync() from public, anon;
grant execute on function auto_sync_user_api.enable_auto_sync(interval) to authenticated, service_role;
grant execute on function auto_sync_user_api.disable_auto_sync() to authenticated, service_role;
grant execute on function auto_sync_user_api.get_auto_sync() to authenticated, service_role;
revoke execute on function public.enable_auto_sync(interval) from public, anon;
revoke execute on function public.disable_auto_sync() from public, anon;
revoke execute on function public.get_auto_sync() from public, anon;
grant execute on function public.enable_auto_sync(interval) to authenticated;
grant execute on function public.disable_auto_sync() to authenticated;
grant execute on function public.get_auto_sync() to authenticated;
