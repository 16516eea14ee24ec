-- Signed auto-sync: continuation at once. A scheduled run that stored new mail and has
-- more to import is continued without waiting for the next tick: the importer calls
-- auto_sync.continue_run(run) right after finish_run, and the continuation is queued
-- here, through pg_net, signed like any dispatch (the signing key never leaves the
-- database; the request lands in whichever function instance the platform picks, a
-- fresh one once the last has retired).
--
--   auto_sync.continue_run(run_id)   for the importer (service role): queues the
--                                    continuation, or brings a run that never started
--                                    in its instance forward to the next tick
--
-- It uses the existing rules only: the follow-up event of auto_sync.next_run_at()
-- (..._auto_sync_next_run.sql) makes the schedule due now, and auto_sync.send_requests()
-- (..._auto_sync_dispatch.sql) sends for that one user exactly what dispatch() would
-- (claims, signature, run row, the schedule's next run by the 'dispatched' event). So:
--   - one run in flight per user (due_schedules skips a user with one): a backlog is one
--     request at a time, each importing up to IMPORT_MAX_MESSAGES;
--   - continuations are not part of dispatch()'s batch (settings.batch_limit): other
--     users' regular syncs are not delayed by a backlog, beyond sharing instances;
--   - cost: one function invocation per run, as before; a 10,000-message first import
--     at the default 500 a run is 20 invocations back to back instead of one a minute.
-- Which runs continue is the follow-up rule of record_outcomes (..._run_lifecycle.sql):
-- trigger schedule, partial, has_more, inserted > 0, not starved; a manual run never
-- does. A run that was not started in its instance (details.not_started: the instance's
-- budget was spent) stored nothing: it is not sent again at once (it would land in the
-- same spent instance) but brought forward to within a minute, as a follow-up.

create function auto_sync.continue_run(p_run_id uuid) returns uuid
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_run auto_sync.runs;
  v_settings auto_sync.settings;
  v_sent integer;
  v_next uuid;
begin
  select * into v_run from auto_sync.runs r where r.id = p_run_id;
  if not found or v_run.trigger <> 'schedule' or v_run.status <> 'partial'
     or coalesce(v_run.details -> 'has_more' <> 'true'::jsonb, true) then
    return null;
  end if;
  -- Only the schedule's latest run continues, once: a continuation moves last_run_id on.
  perform 1 from auto_sync.schedules s
   where s.user_id = v_run.user_id and s.enabled and s.last_run_id = p_run_id
     for update;
  if not found then
    return null;
  end if;

  if coalesce(v_run.details -> 'not_started' = 'true'::jsonb, false) then
    update auto_sync.schedules s
       set next_run_at = auto_sync.next_run_at('follow_up', s.every, s.next_run_at), updated_at = now()
     where s.user_id = v_run.user_id;
    return null;
  end if;
  if auto_sync.detail_count(v_run.details, 'inserted') = 0
     or auto_sync.detail_count(v_run.details, 'fetched') = 0 then
    return null;
  end if;

  select * into strict v_settings from auto_sync.settings;
  if v_settings.endpoint_url is null then
    return null;
  end if;
  -- Due now (the follow-up rule from now), then sent as dispatch() sends it.
  update auto_sync.schedules s
     set next_run_at = auto_sync.next_run_at('follow_up', s.every, now()), updated_at = now()
   where s.user_id = v_run.user_id;
  v_sent := auto_sync.send_requests(v_settings, auto_sync.signing_keys(),
                                    floor(extract(epoch from now()))::bigint, v_run.user_id);
  if v_sent = 0 then
    -- Another run of the user is in flight: it continues the import.
    return null;
  end if;
  select s.last_run_id into v_next from auto_sync.schedules s where s.user_id = v_run.user_id;
  return v_next;
end
$$;
comment on function auto_sync.continue_run(uuid) is
  'For the importer, after finish_run: a scheduled partial run that stored new mail and has more is continued at once (send_requests for its user: signed, queued through pg_net, one run in flight per user); a run not started in its instance is brought forward to within a minute. Returns the continuation''s run id, or null.';
revoke execute on function auto_sync.continue_run(uuid) from public, anon, authenticated;
grant execute on function auto_sync.continue_run(uuid) to service_role;
