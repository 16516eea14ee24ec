-- Signed auto-sync: turning a schedule on and off, and the wrappers through which a
-- signed-in user manages their own schedule. (A run's functions, accept_request to
-- finish_run, are in ..._auto_sync_run_lifecycle.sql.)
--
--   service role (server code, the Edge Functions):
--     auto_sync.enable(user, every), auto_sync.disable(user)
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
  if auto_sync.interval_problem(p_every) is not null then
    raise exception 'Cannot enable auto-sync: interval "%" %', p_every, auto_sync.interval_problem(p_every)
      using errcode = '22023';
  end if;
  if not exists (select 1 from auth.users u where u.id = p_user_id) then
    raise exception 'Cannot enable auto-sync: user "%" does not exist', p_user_id using errcode = '23503';
  end if;

  insert into auto_sync.schedules as s (user_id, every, enabled, next_run_at)
  values (p_user_id, p_every, true, auto_sync.next_run_at('enabled', p_every, null))  -- due at once
  on conflict (user_id) do update
     set every = excluded.every,
         enabled = true,
         -- changing the interval never delays a run; re-enabling (also after a failure
         -- pause) makes it due one interval after the user's last run, never sooner
         next_run_at = case when s.enabled
                            then auto_sync.next_run_at('interval_set', excluded.every, s.next_run_at)
                            else auto_sync.next_run_at('enabled', excluded.every, s.next_run_at,
                                   p_last_run_at => (select max(r.created_at) from auto_sync.runs r
                                                      where r.user_id = s.user_id)) end,
         consecutive_failures = 0,
         paused_reason = null,
         updated_at = now()
  returning * into v_schedule;
  return v_schedule;
end
$$;
comment on function auto_sync.enable(uuid, interval) is
  'Creates or re-enables a user''s schedule (due at once when new; when re-enabled, one interval after the user''s last run), clearing a pause and the failure counter. Interval 5 minutes to 30 days (interval_problem).';

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

revoke execute on function auto_sync.enable(uuid, interval) from public, anon, authenticated;
revoke execute on function auto_sync.disable(uuid) from public, anon, authenticated;
grant execute on function auto_sync.enable(uuid, interval) to service_role;
grant execute on function auto_sync.disable(uuid) to service_role;

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
  v_user_id uuid := auto_sync.user_api_caller('enable auto-sync');  -- signed in, not anonymous
  v_schedule auto_sync.schedules;
begin
  v_schedule := auto_sync.enable(v_user_id, p_every);  -- bounded there (interval_problem)
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
