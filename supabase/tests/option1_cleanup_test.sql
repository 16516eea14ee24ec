-- pgTAP: the Option 1 clean-up migration (20261129140000_remove_option1_service_key.sql)
-- on a database set up the Option 1 way (tests/fixtures/option1_setup.sql), as the
-- superuser. The non-superuser case, the messages it prints and the state after a
-- commit are in tests/option1_cleanup_test.ts.
--
-- One transaction, rolled back: ALTER DATABASE / ALTER ROLE ... SET, cron.schedule and
-- the migration's own changes are all transactional, so pg_cron and other sessions
-- never see any of it (new sessions read only committed settings).
--
-- The migration is read from the repository with a psql backquote and run with
-- lives_ok / throws_ok, so a failure is a failed test, not an aborted file. `supabase
-- test db` mounts only supabase/tests into its pg_prove container: there the file
-- is not reachable and every test here is skipped (run it with pg_prove from the
-- repository root, as scripts/test does, or from supabase/tests).
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = extensions, public;
-- The migration reports with NOTICEs and WARNINGs; tests/option1_cleanup_test.ts checks them.
set local client_min_messages = error;
-- Not at the same time as tests/option1_cleanup_test.ts (same objects, same settings).
select pg_advisory_xact_lock(hashtext('option1_cleanup_test'));

\set migration `cat supabase/migrations/20261129140000_remove_option1_service_key.sql 2>/dev/null || cat ../migrations/20261129140000_remove_option1_service_key.sql 2>/dev/null || true`
select (length(:'migration') > 0) as have_migration \gset

select plan(31);

\if :have_migration

-------------------------------------------------------------------------------
-- Fixture: Option 1, plus this project's own job (already there)
-------------------------------------------------------------------------------
create role option1_pgtap_app nologin;
create temp table t_dispatch_job on commit drop as
  select jobid, schedule, command, active from cron.job where jobname = 'auto-sync-dispatch';

\set suffix '-pgtap'
\set settings_role option1_pgtap_app
\o /dev/null
\ir ../../tests/fixtures/option1_setup.sql
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
   where s.setrole = 'option1_pgtap_app'::regrole
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
create schema option1_pgtap;
create table option1_pgtap.mailboxes (id int primary key);
alter table option1_pgtap.mailboxes enable row level security;
create policy "only once configured" on option1_pgtap.mailboxes as restrictive for select
  using (exists (select 1 from public.auto_sync_config));

select throws_ok(:'migration', '2BP01', null,
                 'a policy on another table that reads auto_sync_config stops the migration');
select throws_like(:'migration', '%without also dropping: policy only once configured on table option1_pgtap.mailboxes%',
                   'the error names the policy');
select has_table('public', 'auto_sync_config', 'refused: the table is still there');
select is((select count(*)::int from cron.job where jobname in (select jobname from t_legacy_jobs)), 3,
          'refused: the legacy jobs are still there');
select ok(pg_temp.db_settings() @> array['app.settings.encryption_key', 'app.settings.service_role_key'],
          'refused: the settings are still there');

drop policy "only once configured" on option1_pgtap.mailboxes;
-- A foreign key to the table is fine: only the constraint goes.
alter table option1_pgtap.mailboxes add column config_id bigint references public.auto_sync_config (id);

-- Named like an Option 1 key helper, but its body refers to no Option 1 state: an
-- application's own function, which the clean-up must not drop by its name alone.
create function option1_pgtap.get_service_key() returns text language sql
  as $$ select 'the key of an unrelated service'::text $$;

-------------------------------------------------------------------------------
-- Dry run (what `deno task doctor` does): reports, changes nothing
-------------------------------------------------------------------------------
set local option1_cleanup.dry_run = on;
select lives_ok(:'migration', 'the dry run applies');
reset option1_cleanup.dry_run;
select has_table('public', 'auto_sync_config', 'dry run: the table is still there');
select has_function('public', 'get_service_role_key', 'dry run: the helpers are still there');
select is((select count(*)::int from cron.job where jobname in (select jobname from t_legacy_jobs)), 3,
          'dry run: the legacy jobs are still there');

-------------------------------------------------------------------------------
-- The clean-up
-------------------------------------------------------------------------------
select lives_ok(:'migration', 'the migration applies');

select hasnt_table('public', 'auto_sync_config', 'public.auto_sync_config is dropped');
select hasnt_view('public', 'auto_sync_config_overview', 'the view over it is dropped');
select hasnt_function('public', 'get_service_role_key', 'get_service_role_key() is dropped');
select hasnt_function('public', 'decrypt_secret', 'decrypt_secret() is dropped');
select hasnt_function('public', 'encrypt_secret', 'encrypt_secret() is dropped');
select has_function('option1_pgtap', 'get_service_key', array[]::text[],
                    'a function named like a key helper whose body refers to no Option 1 state stays');
select has_table('option1_pgtap', 'mailboxes', 'the table with a foreign key to it stays');
select is((select count(*)::int from pg_constraint where conrelid = 'option1_pgtap.mailboxes'::regclass and contype = 'f'),
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

select lives_ok(:'migration', 'the migration applies a second time');
select set_eq('select jobid, jobname, command from cron.job', 'select * from t_jobs_after',
              'second run: the same cron jobs');
select set_eq('select setdatabase, setrole, setconfig from pg_db_role_setting', 'select * from t_settings_after',
              'second run: the same settings');

\else
select skip('the migration file is not reachable from here (supabase test db mounts only supabase/tests); '
            'run pg_prove from the repository root', 31);
\endif

select * from finish();
rollback;
