-- pgTAP: the run-outcome internals' grants and conventions (reconcile_runs, purge_history,
-- record_outcomes, ...), the settings they read, their bounds and documented defaults.
-- One transaction, rolled back.
begin;
\ir support/test_helpers.psql
set local client_min_messages = error;
set local timezone = 'UTC';

select plan(31);

select is(has_function_privilege(r, f, 'execute'), false, format('%s cannot execute %s', r, f))
  from unnest(array['anon', 'authenticated', 'service_role']) r
 cross join unnest(array['auto_sync.reconcile_runs()', 'auto_sync.purge_history()',
                         'auto_sync.record_outcomes(uuid[])', 'auto_sync.record_outcomes_each(uuid[], text)',
                         'auto_sync.describe_interval(interval)']) f;
select is(has_function_privilege('service_role', f, 'execute'), true, format('service_role can still execute %s', f))
  from unnest(array['auto_sync.finish_run(uuid, text, text, jsonb)', 'auto_sync.enable(uuid, interval)']) f;
select is(has_function_privilege('authenticated', 'public.get_auto_sync()', 'execute'), true,
          'authenticated can execute the recreated get_auto_sync');
select is(has_function_privilege('anon', 'public.get_auto_sync()', 'execute'), false,
          'anon cannot execute the recreated get_auto_sync');
select is(
  array(select f from unnest(array['auto_sync.reconcile_runs()', 'auto_sync.purge_history()',
                                   'auto_sync.record_outcomes(uuid[])', 'auto_sync_user_api.get_auto_sync()']) f
         where not exists (select 1 from pg_proc p where p.oid = f::regprocedure
                              and p.prosecdef and 'search_path=""' = any (p.proconfig))),
  '{}'::text[], 'reconcile_runs, purge_history, record_outcomes, get_auto_sync (behind its public wrapper): security definer, search_path ''''');
select is(
  array(select f from unnest(array['auto_sync.reconcile_runs()', 'auto_sync.purge_history()',
                                   'auto_sync.record_outcomes(uuid[])', 'auto_sync.record_outcomes_each(uuid[], text)',
                                   'auto_sync.describe_interval(interval)', 'public.get_auto_sync()']) f
         where obj_description(f::regprocedure, 'pg_proc') is null),
  '{}'::text[], 'every new function has a comment');
select is(
  array(select format('%s.%s', t, c) from (values
          ('settings', 'ack_deadline'), ('settings', 'max_consecutive_failures'), ('settings', 'run_retention'),
          ('settings', 'ledger_retention'), ('settings', 'cron_history_retention'),
          ('schedules', 'consecutive_failures'), ('schedules', 'paused_reason'), ('schedules', 'last_success_at'),
          ('schedules', 'last_error'), ('schedules', 'last_error_at')) v (t, c)
         where col_description(('auto_sync.' || t)::regclass,
                               (select attnum from pg_attribute where attrelid = ('auto_sync.' || t)::regclass
                                   and attname = c)) is null),
  '{}'::text[], 'every new column has a comment');
select is(
  (select array_agg(format('%s=%s', c.column_name, c.column_default) order by c.column_name)
     from information_schema.columns c
    where c.table_schema = 'auto_sync' and c.table_name = 'settings'
      and c.column_name in ('ack_deadline', 'max_consecutive_failures', 'run_retention',
                            'ledger_retention', 'cron_history_retention')),
  array['ack_deadline=''00:05:00''::interval', 'cron_history_retention=''7 days''::interval',
        'ledger_retention=''1 day''::interval', 'max_consecutive_failures=8',
        'run_retention=''30 days''::interval'],
  'documented defaults: ack 5 min, 8 failures, runs 30 days, ledger 1 day, cron history 7 days');

-------------------------------------------------------------------------------
-- Settings checks
-------------------------------------------------------------------------------
select throws_ok($$update auto_sync.settings set ledger_retention = '9 minutes 59 seconds'$$, '23514', null,
                 'ledger_retention below 10 minutes is refused (ids must outlive the ±300 s window)');
select lives_ok($$update auto_sync.settings set ledger_retention = '10 minutes'$$, 'ledger_retention of 10 minutes is accepted');
select throws_ok($$update auto_sync.settings set ack_deadline = '4 minutes', request_ttl = '5 minutes'$$, '23514', null,
                 'ack_deadline shorter than request_ttl is refused');
select throws_ok($$update auto_sync.settings set max_consecutive_failures = 0$$, '23514', null,
                 'max_consecutive_failures below 1 is refused');
update auto_sync.settings set ledger_retention = '1 day';
select is(auto_sync.describe_interval(i), w, format('describe_interval(%s) = %s', i, w))
  from (values (interval '5 minutes', '5 minutes'), (interval '1 hour', '1 hour'),
               (interval '90 seconds', '90 seconds'), (interval '1 day', '1 day')) v (i, w);


select * from finish();
rollback;
