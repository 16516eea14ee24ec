-- Signed auto-sync: retention, and the maintenance job that also reconciles runs.
--
--   auto_sync.purge_history()    postgres only (the maintenance job)
--       old runs (each schedule's last run kept), old replay-ledger ids, our cron
--       jobs' cron.job_run_details rows, our old net._http_response rows.
--   pg_cron job auto-sync-maintenance   every 10 minutes: auto_sync.reconcile_runs()
--       (..._auto_sync_run_lifecycle.sql), then purge_history().
--
-- Both run from a second pg_cron job, not from dispatch(): dispatch() stays one cheap
-- statement per tick (its cost is what the scale benchmark measures), a failing purge can
-- never stop dispatching, and 10 minutes is far inside pg_net's 6-hour response TTL.
-- The retention settings (*_retention) are defined with their tables in
-- ..._auto_sync_tables.sql.

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

revoke execute on function auto_sync.purge_history() from public, anon, authenticated, service_role;

-------------------------------------------------------------------------------
-- The maintenance job, installed idempotently. Its command holds no secret.
-------------------------------------------------------------------------------
select cron.unschedule(jobid) from cron.job where jobname = 'auto-sync-maintenance';
select cron.schedule('auto-sync-maintenance', '*/10 * * * *',
                     'select auto_sync.reconcile_runs(); select auto_sync.purge_history();');
