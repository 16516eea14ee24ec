-- pgTAP: the clean-up of the service-role key stored in the database,
-- auto_sync.remove_stored_service_key() (20261129140010_remove_stored_service_key.sql), on
-- a database set up with a stored service-role key (fixtures/stored_service_key_setup.psql), as the
-- superuser. The non-superuser case, the messages it prints and the state after a commit
-- are in tests/ops/service_key_cleanup_test.ts.
--
-- One transaction, rolled back: ALTER DATABASE / ALTER ROLE ... SET, cron.schedule and
-- the clean-up's own changes are all transactional, so pg_cron and other sessions never
-- see any of it (new sessions read only committed settings). The fixture is included
-- relative to this file, so `supabase test db` runs every check too.
begin;
\ir support/test_helpers.psql
-- The clean-up reports with NOTICEs and WARNINGs; tests/ops/service_key_cleanup_test.ts checks them.
set local client_min_messages = error;
-- Not at the same time as tests/ops/service_key_cleanup_test.ts (same objects, same settings).
select pg_advisory_xact_lock(hashtext('service_key_cleanup_test'));
\set cleanup 'select auto_sync.remove_stored_service_key()'

select plan(34);

-------------------------------------------------------------------------------
-- Fixture: the stored key, plus this project's own job (already there)
-------------------------------------------------------------------------------
create role stored_key_pgtap_app nologin;
create temp table t_dispatch_job on commit drop as
  select jobid, schedule, command, active from cron.job where jobname = 'auto-sync-dispatch';

\set suffix '-pgtap'
\set settings_role stored_key_pgtap_app
\o /dev/null
\ir fixtures/stored_service_key_setup.psql
\o

create temp table t_legacy_jobs (jobname text primary key) on commit drop;
insert into t_legacy_jobs values
  ('auto-sync-' || :'user1'), ('sync_emails_' || :'user2'), ('auto-sync-' || :'user3');
create temp table t_kept_jobs (jobname text primary key) on commit drop;
insert into t_kept_jobs values ('vacuum-nightly-pgtap'), ('send-digest-pgtap'), ('health-ping-pgtap');

create function pg_temp.db_settings() returns text[] language sql stable as $$
  select coalesce(array_agg(split_part(c, '=', 1) order by 1), '{}')
    from pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c
   where s.setrole = 0
     and s.setdatabase = (select oid from pg_catalog.pg_database where datname = current_database())
     and c like 'app.settings.%'
$$;
create function pg_temp.role_settings() returns text[] language sql stable as $$
  select coalesce(array_agg(split_part(c, '=', 1) order by 1), '{}')
    from pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c
   where s.setrole = 'stored_key_pgtap_app'::regrole
$$;

select has_table('public', 'auto_sync_config', 'fixture: public.auto_sync_config exists');
select is(public.get_service_role_key(), :'service_role_key', 'fixture: the service key decrypts from the table');
select is((select count(*)::int from cron.job where jobname in (select jobname from t_legacy_jobs)), 3,
          'fixture: three per-user legacy jobs');
select ok(pg_temp.db_settings() @> array['app.settings.encryption_key', 'app.settings.service_role_key',
                                         'app.settings.supabase_url'],
          'fixture: encryption key, service key and URL set with ALTER DATABASE');

-------------------------------------------------------------------------------
-- Something depends on the table that CASCADE must not take: refused, nothing changed
-------------------------------------------------------------------------------
create schema stored_key_pgtap;
create table stored_key_pgtap.mailboxes (id int primary key);
alter table stored_key_pgtap.mailboxes enable row level security;
create policy "only once configured" on stored_key_pgtap.mailboxes as restrictive for select
  using (exists (select 1 from public.auto_sync_config));

select throws_ok(:'cleanup', '2BP01', null,
                 'a policy on another table that reads auto_sync_config stops the clean-up');
select throws_like(:'cleanup', '%without also dropping: policy only once configured on table stored_key_pgtap.mailboxes%',
                   'the error names the policy');
select has_table('public', 'auto_sync_config', 'refused: the table is still there');
select is((select count(*)::int from cron.job where jobname in (select jobname from t_legacy_jobs)), 3,
          'refused: the legacy jobs are still there');
select ok(pg_temp.db_settings() @> array['app.settings.encryption_key', 'app.settings.service_role_key'],
          'refused: the settings are still there');

drop policy "only once configured" on stored_key_pgtap.mailboxes;
-- A foreign key to the table is fine: only the constraint goes.
alter table stored_key_pgtap.mailboxes add column config_id bigint references public.auto_sync_config (id);

-- Named like a stored-key helper, but its body refers to no stored-key state: an
-- application's own function, which the clean-up must not drop by its name alone.
create function stored_key_pgtap.get_service_key() returns text language sql
  as $$ select 'the key of an unrelated service'::text $$;

-------------------------------------------------------------------------------
-- Dry run (what `deno task doctor` does): reports, changes nothing
-------------------------------------------------------------------------------
select lives_ok('select auto_sync.remove_stored_service_key(p_dry_run => true)', 'the dry run applies');
select is(
  (select format('%s|%s|%s|%s', r ->> 'clean', r ->> 'dry_run', r ->> 'jobs', r ->> 'objects')
     from auto_sync.remove_stored_service_key(p_dry_run => true) r),
  'false|true|3|4', 'the dry run reports what it would remove: 3 legacy jobs, 4 objects; not clean');
select has_table('public', 'auto_sync_config', 'dry run: the table is still there');
select has_function('public', 'get_service_role_key', 'dry run: the helpers are still there');
select is((select count(*)::int from cron.job where jobname in (select jobname from t_legacy_jobs)), 3,
          'dry run: the legacy jobs are still there');

-------------------------------------------------------------------------------
-- The clean-up
-------------------------------------------------------------------------------
select lives_ok(:'cleanup', 'the clean-up applies');

select hasnt_table('public', 'auto_sync_config', 'public.auto_sync_config is dropped');
select hasnt_view('public', 'auto_sync_config_overview', 'the view over it is dropped');
select hasnt_function('public', 'get_service_role_key', 'get_service_role_key() is dropped');
select hasnt_function('public', 'decrypt_secret', 'decrypt_secret() is dropped');
select hasnt_function('public', 'encrypt_secret', 'encrypt_secret() is dropped');
select has_function('stored_key_pgtap', 'get_service_key', array[]::text[],
                    'a function named like a key helper whose body refers to no stored-key state stays');
select has_table('stored_key_pgtap', 'mailboxes', 'the table with a foreign key to it stays');
select is((select count(*)::int from pg_constraint where conrelid = 'stored_key_pgtap.mailboxes'::regclass and contype = 'f'),
          0, '... without its foreign key');

select is((select count(*)::int from cron.job where jobname in (select jobname from t_legacy_jobs)), 0,
          'the three legacy jobs are unscheduled');
select is((select count(*)::int from cron.job where jobname in (select jobname from t_kept_jobs)), 3,
          'the unrelated jobs stay (vacuum, an anon-key call, a call with no credential)');
select results_eq(
  'select jobid, schedule, command, active from cron.job where jobname = ''auto-sync-dispatch''',
  'select jobid, schedule, command, active from t_dispatch_job',
  'auto-sync-dispatch is untouched');
select is((select count(*)::int from cron.job where command like '%' || :'service_role_key' || '%'), 0,
          'no cron job holds the key');

select is(pg_temp.db_settings(), array['app.settings.supabase_url'],
          'database level: service key and encryption key reset, the (non-secret) URL kept');
select is(pg_temp.role_settings(), '{}'::text[], 'role level: ALTER ROLE ... SET keys reset too');

-------------------------------------------------------------------------------
-- Again: idempotent
-------------------------------------------------------------------------------
create temp table t_jobs_after on commit drop as select jobid, jobname, command from cron.job;
create temp table t_settings_after on commit drop as select setdatabase, setrole, setconfig from pg_db_role_setting;

select lives_ok(:'cleanup', 'the clean-up applies a second time');
select set_eq('select jobid, jobname, command from cron.job', 'select * from t_jobs_after',
              'second run: the same cron jobs');
select set_eq('select setdatabase, setrole, setconfig from pg_db_role_setting', 'select * from t_settings_after',
              'second run: the same settings');
select is((select r ->> 'summary' from auto_sync.remove_stored_service_key(p_dry_run => true) r),
          'service-key clean-up: no stored service key found',
          'afterwards the dry run (what doctor runs) finds nothing');
select is(auto_sync.remove_stored_service_key() ->> 'clean', 'true', 'afterwards the clean-up reports clean');


select * from finish();
rollback;
