-- Mail import, part 2: what the importer needs from the run bookkeeping.
--   * "sync now" at most once a minute per user (the function answers 429 otherwise);
--   * a run that stopped at its budget (partial) brings the next scheduled run forward.

drop function auto_sync.start_manual_run(uuid);

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
revoke execute on function auto_sync.request_manual_run(uuid, interval) from public, anon, authenticated;
grant execute on function auto_sync.request_manual_run(uuid, interval) to service_role;

create or replace function auto_sync.finish_run(
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
  update auto_sync.schedules
     set last_outcome = p_status,
         last_outcome_at = now(),
         -- more mail is waiting: continue at the next tick instead of a full interval later
         next_run_at = case when p_status = 'partial' and coalesce((p_details ->> 'has_more')::boolean, false)
                            then least(next_run_at, now() + interval '1 minute')
                            else next_run_at end,
         updated_at = now()
   where user_id = v_run.user_id;
  return true;
end
$$;
