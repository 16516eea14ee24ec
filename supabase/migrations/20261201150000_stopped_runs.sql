-- Signed auto-sync: a run whose function instance was ended by a runtime limit is called
-- `lost` within a minute, not after settings.in_flight_timeout (15 minutes).
--
-- The edge runtime ends an isolate at its wall clock at the latest (150 s free, 400 s
-- paid; supabase/edge-runtime crates/base/src/worker/supervisor/strategy_per_worker.rs),
-- and sooner at its CPU or memory limit. The importer records, when it starts a run, the
-- time its instance is gone by (functions-shared/isolate_budget.ts): after that moment
-- nothing can finish the run any more.
--
--   auto_sync.runs.must_finish_by             set by start_run()
--   auto_sync.start_run(run_id, must_finish_by)   service role (the importer)
--   auto_sync.reconcile_stopped_runs()        postgres only; pg_cron job auto-sync-stopped-runs,
--                                             every minute; also releases the lost runs' leases

alter table auto_sync.runs add column must_finish_by timestamptz;
comment on column auto_sync.runs.must_finish_by is
  'When the function instance running this run is gone at the latest (its wall clock). A run still running 5 seconds after it is lost (reconcile_stopped_runs).';

-- Replaces start_run(uuid): same transition, plus the instance's end. Without it (an
-- older function) the run is reconciled by in_flight_timeout as before.
drop function auto_sync.start_run(uuid);
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
revoke execute on function auto_sync.start_run(uuid, timestamptz) from public, anon, authenticated;
grant execute on function auto_sync.start_run(uuid, timestamptz) to service_role;

create function auto_sync.reconcile_stopped_runs() returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_ids uuid[];
  v_settings auto_sync.settings;
begin
  select * into strict v_settings from auto_sync.settings;
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

  if cardinality(v_ids) > 0 then
    begin
      perform auto_sync.record_outcomes(v_ids);
    exception when data_exception or integrity_constraint_violation then
      -- As in reconcile_runs(): one schedule's values broke the bookkeeping; run by run.
      for i in 1 .. cardinality(v_ids) loop
        begin
          perform auto_sync.record_outcomes(array[v_ids[i]]);
        exception when data_exception or integrity_constraint_violation then
          raise warning 'auto_sync.reconcile_stopped_runs: skipped the schedule bookkeeping of run %: %', v_ids[i], sqlerrm;
        end;
      end loop;
    end;
  end if;

  -- This job's own history, kept as long as the other jobs' (purge_history() keeps theirs).
  begin
    delete from cron.job_run_details d
     where d.jobid in (select j.jobid from cron.job j where j.jobname = 'auto-sync-stopped-runs')
       and coalesce(d.end_time, d.start_time) < now() - v_settings.cron_history_retention;
  exception when insufficient_privilege then
    raise warning 'auto_sync.reconcile_stopped_runs: cannot delete from cron.job_run_details: %', sqlerrm;
  end;
  return cardinality(v_ids);
end
$$;
comment on function auto_sync.reconcile_stopped_runs() is
  'Run every minute by the pg_cron job auto-sync-stopped-runs: runs still running 5 seconds past must_finish_by (their function instance is gone) -> lost, their mailbox leases released, with the schedule bookkeeping (record_outcomes); deletes the job''s own cron.job_run_details past settings.cron_history_retention. Returns the runs called lost.';
revoke execute on function auto_sync.reconcile_stopped_runs() from public, anon, authenticated, service_role;

-- Installed idempotently; its command holds no secret.
select cron.unschedule(jobid) from cron.job where jobname = 'auto-sync-stopped-runs';
select cron.schedule('auto-sync-stopped-runs', '* * * * *', 'select auto_sync.reconcile_stopped_runs()');
