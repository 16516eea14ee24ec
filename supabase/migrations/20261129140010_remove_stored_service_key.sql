-- Removes the service-role key stored in the database: the design signed auto-sync
-- replaces (the first design SECURITY.md compares) kept it encrypted in a table, the encryption key
-- beside it in the database, and one pg_cron job per user calling the Edge Function with
-- that key as a bearer token.
--
--   auto_sync.remove_stored_service_key(p_dry_run default false) returns jsonb
--       finds and removes it; this migration calls it once. With p_dry_run it only finds
--       and reports: `deno task doctor` calls it so, so the leftover check and the
--       clean-up can never disagree on what the stored key's state is. SECURITY INVOKER:
--       it acts with its caller's rights (run it as a superuser for what `postgres` may
--       not do, see below).
--
-- What it removes, and only when present (on a clean database it changes nothing):
--   1. pg_cron jobs that call an Edge Function (`/functions/v1/`) over HTTP (pg_net's
--      `net.http_post` / `net.http_get`, or the `http` extension) and carry the
--      service key: a call of one of the helpers below, `auto_sync_config`, a key
--      setting, an `sb_secret_...` key or a JWT whose role is service_role. Also any
--      job sending a bearer token or apikey to `/functions/v1/import-emails`: the
--      per-user jobs this project replaces, whatever their token. Never
--      `auto-sync-dispatch`. Their run history goes with them: every row of
--      `cron.job_run_details` repeats the command, key included.
--   2. Tables named `auto_sync_config`, and the helper functions named in
--      `c_key_helpers` and `c_crypto_helpers` (any signature) whose body refers to the
--      stored key's state (the table, a key setting, or another helper): a function that
--      only shares a helper's name is kept. In any schema except PostgreSQL's and
--      those the Supabase platform manages (auth, storage, vault, ...), and not part
--      of an extension.
--   3. `app.settings.*` service-key and encryption-key settings, database-wide
--      (`ALTER DATABASE ... SET`) and per role (`ALTER ROLE ... SET`).
--
-- Deliberately conservative:
--   * Nothing is changed before everything has been checked.
--   * DROP ... CASCADE takes only what can do nothing but expose the key: views over
--     the table or the helpers, and foreign keys pointing at the table (the
--     referencing table and its rows stay). Anything else depending on them (a
--     policy on another table, a column of the table's row type, a function taking
--     that row type, ...) stops the migration with the list: CASCADE would silently
--     drop it, and a dropped policy can widen access. Move it, then apply again.
--   * `encrypt_secret` / `decrypt_secret` are generic names: dropped only when their
--     body refers to the stored key's state. When anything else may still use them or the
--     encryption key (another function, a remaining cron job, a column named like
--     `*encrypt*` / `*cipher*`), they and the encryption-key settings are KEPT, with a
--     warning: clearing the key could leave data nobody can decrypt.
--   * The platform's own `app.settings.jwt_secret` / `jwt_exp` (self-hosted and older
--     projects) and non-secret settings such as `app.settings.supabase_url` are kept.
--   * On hosted Supabase migrations run as `postgres`, which is not a superuser, and
--     only a superuser may reset a custom (`app.*`) setting. That refusal
--     (insufficient_privilege) becomes a WARNING naming the exact statement to have
--     run (Supabase support; a superuser when self-hosted); the migration succeeds.
--     Likewise for jobs and objects owned by a role the migration cannot act for.
--
-- NOTICEs name what was removed (job names, objects, setting names), never a command
-- text or a setting value: both may hold the key. Idempotent: a second run finds
-- nothing. When it finds a stored service key it says to rotate it: the key sat in
-- the database and crossed the wire on every sync.
--
-- The report (jsonb): jobs, history_rows, objects, settings (removed, or with p_dry_run
-- what would be), settings_left (for a superuser), found_key, clean (nothing found),
-- dry_run, summary (the last NOTICE's text). Its last NOTICE says the same, or "no stored
-- service key found".

-- search_path is '' inside the function, catalogs are read as pg_catalog.*: neither the
-- caller's search_path nor a same-named temporary object changes what is matched or
-- dropped, and object names in messages and DROP statements come out fully qualified.

create function auto_sync.remove_stored_service_key(p_dry_run boolean default false) returns jsonb
language plpgsql volatile set search_path = ''
as $cleanup$
declare
  -- The table the encrypted key was kept in, in whatever schema it was created.
  c_table constant text := 'auto_sync_config';
  -- Helpers whose name says what they do with the service key: dropped when their body
  -- refers to the stored key's state (see A2).
  c_key_helpers constant text[] := array[
    'get_service_role_key', 'get_service_key', 'get_decrypted_service_key',
    'get_decrypted_service_role_key', 'decrypt_service_key', 'decrypt_service_role_key',
    'encrypt_service_key', 'encrypt_service_role_key', 'set_service_role_key',
    'store_service_role_key'];
  -- The generic pgcrypto wrappers that design used (pgp_sym_encrypt / pgp_sym_decrypt with
  -- the passphrase from app.settings.encryption_key).
  c_crypto_helpers constant text[] := array['encrypt_secret', 'decrypt_secret'];
  -- Settings that held the service key: always cleared.
  c_service_key_settings constant text[] := array[
    'app.settings.service_role_key', 'app.settings.service_key', 'app.settings.service_role',
    'app.settings.service_role_secret', 'app.settings.supabase_service_role_key',
    'app.settings.supabase_service_key'];
  -- Settings that held the encryption key: cleared unless something else may use them.
  c_encryption_key_settings constant text[] := array[
    'app.settings.encryption_key', 'app.settings.encryption_secret',
    'app.settings.decryption_key', 'app.settings.pgp_key', 'app.settings.auto_sync_encryption_key'];
  -- Set by the Supabase platform itself: never touched, although named like secrets.
  c_platform_settings constant text[] := array['app.settings.jwt_secret', 'app.settings.jwt_exp'];
  -- This project's own job (its command holds no secret).
  c_dispatch_job constant text := 'auto-sync-dispatch';
  -- Never searched: PostgreSQL's own schemas and those the Supabase platform manages
  -- (e.g. auth.users.encrypted_password must not count as "data under the key").
  c_system_schema_re constant text := '^(pg_catalog|information_schema|pg_toast.*|pg_temp_.*|auth|storage|'
    'realtime|_realtime|_analytics|vault|pgsodium|pgsodium_masks|graphql|graphql_public|supabase_functions|'
    'supabase_migrations|net|cron|pgbouncer)$';

  -- pg_cron is installed in one database of the cluster (cron.database_name), and a
  -- role without USAGE on its schema has no jobs to find.
  v_have_cron boolean := case when pg_catalog.to_regclass('cron.job') is null then false
                              else pg_catalog.has_schema_privilege('cron', 'usage')
                                   and pg_catalog.has_table_privilege('cron.job', 'select') end;
  v_have_cron_history boolean := case when pg_catalog.to_regclass('cron.job_run_details') is null then false
                                      else pg_catalog.has_schema_privilege('cron', 'usage')
                                           and pg_catalog.has_table_privilege('cron.job_run_details', 'select, delete') end;
  v_db_oid oid;
  -- Regular expressions built from the lists above (all names are [a-z_.]).
  v_helper_call_re text;     -- a call of any helper
  v_removed_call_re text;    -- a call of a helper that is gone after this migration
  v_crypto_call_re text;     -- a call of encrypt_secret / decrypt_secret
  v_service_name_re text;    -- a service-key setting's last part, e.g. service_role_key
  v_encryption_name_re text; -- an encryption-key setting's last part, e.g. encryption_key
  v_key_state_re text;      -- the table or any key setting
  -- What was found.
  v_jobs bigint[] := '{}'::bigint[];
  v_unscheduled bigint[] := '{}'::bigint[];
  v_job_labels text[] := '{}'::text[];
  v_jobs_keyed boolean := false;
  v_tables oid[];
  v_functions oid[];
  v_kept_crypto oid[] := '{}'::oid[];
  v_keep_encryption_key boolean := false;
  v_in_use text[];
  v_blockers text[];
  v_cascaded text[] := '{}'::text[];
  -- Scratch and counters.
  v_record record;
  v_names text[];
  v_statement text;
  v_removed_jobs integer := 0;
  v_removed_history bigint := 0;
  v_removed_objects integer := 0;
  v_cleared_settings integer := 0;
  v_left_settings text[] := '{}'::text[];
  v_found_key boolean := false;
  v_dry_run boolean := coalesce(p_dry_run, false);
  v_summary text;
  -- This function: its own body names the key's table and settings, so every search of
  -- function bodies leaves it out.
  v_self oid := 'auto_sync.remove_stored_service_key(boolean)'::pg_catalog.regprocedure;
begin
  if v_dry_run then
    raise notice 'service-key clean-up: dry run: nothing below is changed';
  end if;

  v_helper_call_re := '\m(' || pg_catalog.array_to_string(c_key_helpers || c_crypto_helpers, '|') || ')\s*\(';
  v_crypto_call_re := '\m(' || pg_catalog.array_to_string(c_crypto_helpers, '|') || ')\s*\(';
  -- Bare "service_role" is left out: it is also a role name, found everywhere.
  v_service_name_re := '\m(' || pg_catalog.array_to_string(array(
      select pg_catalog.substr(s, 14) from pg_catalog.unnest(c_service_key_settings) s
       where s <> 'app.settings.service_role'), '|') || ')\M';
  v_encryption_name_re := '\m(' || pg_catalog.array_to_string(array(
      select pg_catalog.substr(s, 14) from pg_catalog.unnest(c_encryption_key_settings) s), '|') || ')\M';
  v_key_state_re := '\m' || c_table || '\M|' || v_service_name_re || '|' || v_encryption_name_re;
  select d.oid into strict v_db_oid from pg_catalog.pg_database d where d.datname = pg_catalog.current_database();

  ---------------------------------------------------------------------------------
  -- A. Find. Nothing is changed in this part.
  ---------------------------------------------------------------------------------

  -- A1. pg_cron jobs calling an Edge Function. A non-superuser sees only their own
  -- jobs (pg_cron's row-level security): the ones they may unschedule.
  if v_have_cron then
    for v_record in
      select j.jobid, coalesce(j.jobname, 'jobid ' || j.jobid) as label,
             j.command ~* v_helper_call_re
               or j.command ~* v_key_state_re
               or j.command ~ 'sb_secret_[A-Za-z0-9_-]{8,}'
               or exists (
                    -- a JWT literal whose payload says role service_role, or that cannot
                    -- be read (then treated as a secret); an anon key is public
                    select 1
                      from pg_catalog.regexp_matches(j.command,
                             'eyJ[A-Za-z0-9_-]*\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]*', 'g') as m (parts)
                     where case when pg_catalog.length(m.parts[1]) % 4 = 1 then true
                                else pg_catalog.encode(pg_catalog.decode(pg_catalog.rpad(
                                       pg_catalog.translate(m.parts[1], '-_', '+/'),
                                       (pg_catalog.length(m.parts[1]) + 3) / 4 * 4, '='), 'base64'), 'escape')
                                     ~ '"role"\s*:\s*"service_role"'
                           end) as carries_service_key,
             j.command ~* '/functions/v1/import-emails\M'
               and j.command ~* '\m(bearer|apikey)\M' as legacy_import_job,
             j.command ~* '\m(bearer|apikey|authorization)\M' as sends_credential
        from cron.job j
       where j.jobname is distinct from c_dispatch_job
         and j.command !~* '\mauto_sync\.dispatch\s*\('
         and j.command ~* '\mhttp(_post|_get)?\s*\('  -- net.http_post/_get, http_post/_get, http(...)
         and j.command ~* '/functions/v1/'
       order by j.jobid
    loop
      if v_record.carries_service_key or v_record.legacy_import_job then
        v_jobs := v_jobs || v_record.jobid;
        v_job_labels := v_job_labels || v_record.label;
        v_jobs_keyed := v_jobs_keyed or v_record.carries_service_key;
      elsif v_record.sends_credential then
        raise notice 'service-key clean-up: kept pg_cron job "%": it sends an Edge Function a credential that is not a service key',
          v_record.label;
      end if;
    end loop;
  end if;

  -- A2. The table and the helpers, outside system schemas and extensions.
  v_tables := array(
    select c.oid
      from pg_catalog.pg_class c
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where c.relname = c_table
       and c.relkind in ('r', 'p')
       and n.nspname !~ c_system_schema_re
       and not exists (select 1 from pg_catalog.pg_depend d
                        where d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                          and d.objid = c.oid and d.deptype = 'e')
     order by c.oid);
  v_functions := array(
    select p.oid
      from pg_catalog.pg_proc p
      join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where (p.proname = any (c_key_helpers)
            -- a key helper reads the table or a key setting, or calls another helper
            and (p.prosrc ~* v_key_state_re or p.prosrc ~* v_helper_call_re)
            or (p.proname = any (c_crypto_helpers) and p.prosrc ~* v_key_state_re))
       and n.nspname !~ c_system_schema_re
       and not exists (select 1 from pg_catalog.pg_depend d
                        where d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                          and d.objid = p.oid and d.deptype = 'e')
     order by p.oid);

  -- A3. Does anything that stays still need the encryption key? Then keep it, and the
  -- generic crypto helpers with it.
  if pg_catalog.cardinality(v_tables) + pg_catalog.cardinality(v_functions) > 0
     or exists (select 1 from pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) c
                 where s.setdatabase in (0, v_db_oid)
                   and pg_catalog.split_part(c, '=', 1) = any (c_encryption_key_settings)) then
    v_in_use := array(
      select pg_catalog.format('function %s', p.oid::pg_catalog.regprocedure)
        from pg_catalog.pg_proc p
        join pg_catalog.pg_namespace n on n.oid = p.pronamespace
       where p.oid <> all (v_functions) and p.oid <> v_self
         and (p.prosrc ~* v_crypto_call_re or p.prosrc ~* v_encryption_name_re)
         and n.nspname !~ c_system_schema_re
         and not exists (select 1 from pg_catalog.pg_depend d
                          where d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                            and d.objid = p.oid and d.deptype = 'e')
      union all
      select pg_catalog.format('column %s.%I', c.oid::pg_catalog.regclass, a.attname)
        from pg_catalog.pg_attribute a
        join pg_catalog.pg_class c on c.oid = a.attrelid
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
       where a.attname ~* 'encrypt|cipher'
         and a.attnum > 0 and not a.attisdropped
         and c.relkind in ('r', 'p')
         and c.oid <> all (v_tables)
         and n.nspname !~ c_system_schema_re
         and not exists (select 1 from pg_catalog.pg_depend d
                          where d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                            and d.objid = c.oid and d.deptype = 'e')
      order by 1);
    if v_have_cron then
      v_in_use := v_in_use || array(
        select pg_catalog.format('pg_cron job "%s"', coalesce(j.jobname, 'jobid ' || j.jobid))
          from cron.job j
         where j.jobid <> all (v_jobs)
           and (j.command ~* v_crypto_call_re or j.command ~* v_encryption_name_re)
         order by 1);
    end if;
    if pg_catalog.cardinality(v_in_use) > 0 then
      v_keep_encryption_key := true;
      v_kept_crypto := array(select f from pg_catalog.unnest(v_functions) f
                               join pg_catalog.pg_proc p on p.oid = f
                              where p.proname = any (c_crypto_helpers));
      v_functions := array(select f from pg_catalog.unnest(v_functions) f where f <> all (v_kept_crypto));
      raise warning 'service-key clean-up: kept the encryption-key settings% because other objects may still need them: %',
        coalesce(' and ' || nullif(pg_catalog.array_to_string(array(
                   select f::pg_catalog.regprocedure::text from pg_catalog.unnest(v_kept_crypto) f order by 1),
                 ', '), ''), ''),
        pg_catalog.array_to_string(v_in_use, ', ')
        using hint = 'Decrypt that data or move it into Vault, then clear the key yourself: '
                     'clearing it now could leave data nobody can decrypt.';
    end if;
  end if;

  -- A4. What DROP ... CASCADE would take along. Walk pg_depend down from the tables
  -- and helpers to whatever depends on them, and up from an internal part to its
  -- owner (a view's _RETURN rule to the view), as PostgreSQL's own walk does. Fine:
  -- the dropped objects' own parts (indexes, constraints, triggers, policies,
  -- defaults, owned sequences, row types, TOAST, publication entries), views over
  -- them (and their parts), foreign keys of other tables. Anything else blocks.
  if pg_catalog.cardinality(v_tables) + pg_catalog.cardinality(v_functions) > 0 then
    with recursive walk (classid, objid, objsubid) as (
      select 'pg_catalog.pg_class'::pg_catalog.regclass::oid, t, 0 from pg_catalog.unnest(v_tables) t
      union
      select 'pg_catalog.pg_proc'::pg_catalog.regclass::oid, f, 0 from pg_catalog.unnest(v_functions) f
      union
      select x.classid, x.objid, x.objsubid
        from walk w
        cross join lateral (
          select d.classid, d.objid, d.objsubid
            from pg_catalog.pg_depend d
           where d.refclassid = w.classid and d.refobjid = w.objid
             and (w.objsubid = 0 or d.refobjsubid = w.objsubid)
             and d.deptype in ('n', 'a', 'i')
          union all
          select d.refclassid, d.refobjid, 0
            from pg_catalog.pg_depend d
           where d.classid = w.classid and d.objid = w.objid and d.deptype = 'i'
        ) x
    ),
    -- relations that go entirely: the tables, views over them, and their TOAST tables
    rels (oid) as (
      select c.oid
        from walk w join pg_catalog.pg_class c on c.oid = w.objid
       where w.classid = 'pg_catalog.pg_class'::pg_catalog.regclass and w.objsubid = 0
         and (c.oid = any (v_tables) or c.relkind in ('v', 'm'))
      union
      select c.reltoastrelid
        from walk w join pg_catalog.pg_class c on c.oid = w.objid
       where w.classid = 'pg_catalog.pg_class'::pg_catalog.regclass and w.objsubid = 0
         and (c.oid = any (v_tables) or c.relkind = 'm') and c.reltoastrelid <> 0
    ),
    judged as (
      select pg_catalog.pg_describe_object(w.classid, w.objid, w.objsubid) as what,
             case w.classid
               when 'pg_catalog.pg_proc'::pg_catalog.regclass then w.objid = any (v_functions)
               when 'pg_catalog.pg_class'::pg_catalog.regclass then
                 w.objid in (select oid from rels)
                 or (w.objsubid = 0 and exists (
                       select 1 from pg_catalog.pg_class c
                        where c.oid = w.objid
                          and ((c.relkind in ('i', 'I') and exists (
                                 select 1 from pg_catalog.pg_index i
                                  where i.indexrelid = c.oid and i.indrelid in (select oid from rels)))
                               or (c.relkind = 'S' and exists (
                                 select 1 from pg_catalog.pg_depend d
                                  where d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                    and d.objid = c.oid and d.deptype in ('a', 'i')
                                    and d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                    and d.refobjid in (select oid from rels))))))
               when 'pg_catalog.pg_type'::pg_catalog.regclass then exists (
                 select 1 from pg_catalog.pg_type t
                   left join pg_catalog.pg_type e on e.oid = t.typelem
                  where t.oid = w.objid
                    and (t.typrelid in (select oid from rels) or e.typrelid in (select oid from rels)))
               when 'pg_catalog.pg_rewrite'::pg_catalog.regclass then exists (
                 select 1 from pg_catalog.pg_rewrite r
                  where r.oid = w.objid and r.ev_class in (select oid from rels))
               when 'pg_catalog.pg_constraint'::pg_catalog.regclass then exists (
                 select 1 from pg_catalog.pg_constraint k
                  where k.oid = w.objid
                    and (k.conrelid in (select oid from rels)
                         or (k.contype = 'f' and k.confrelid = any (v_tables))))
               when 'pg_catalog.pg_trigger'::pg_catalog.regclass then exists (
                 select 1 from pg_catalog.pg_trigger g
                  where g.oid = w.objid
                    and (g.tgrelid in (select oid from rels)
                         or exists (select 1 from pg_catalog.pg_constraint k
                                     where k.oid = g.tgconstraint and k.contype = 'f'
                                       and k.confrelid = any (v_tables))))
               when 'pg_catalog.pg_policy'::pg_catalog.regclass then exists (
                 select 1 from pg_catalog.pg_policy p
                  where p.oid = w.objid and p.polrelid in (select oid from rels))
               when 'pg_catalog.pg_attrdef'::pg_catalog.regclass then exists (
                 select 1 from pg_catalog.pg_attrdef a
                  where a.oid = w.objid and a.adrelid in (select oid from rels))
               when 'pg_catalog.pg_publication_rel'::pg_catalog.regclass then exists (
                 select 1 from pg_catalog.pg_publication_rel r
                  where r.oid = w.objid and r.prrelid in (select oid from rels))
               when 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass then exists (
                 select 1 from pg_catalog.pg_statistic_ext s
                  where s.oid = w.objid and s.stxrelid in (select oid from rels))
               else false
             end as allowed,
             -- worth naming: views, and foreign keys of other tables
             (w.classid = 'pg_catalog.pg_class'::pg_catalog.regclass and w.objsubid = 0
                and exists (select 1 from pg_catalog.pg_class c where c.oid = w.objid and c.relkind in ('v', 'm')))
             or (w.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass and exists (
                   select 1 from pg_catalog.pg_constraint k
                    where k.oid = w.objid and k.contype = 'f' and k.conrelid <> all (v_tables)))
               as named
        from walk w
    )
    select coalesce(array_agg(j.what order by j.what) filter (where not j.allowed), '{}'),
           coalesce(array_agg(j.what order by j.what) filter (where j.allowed and j.named), '{}')
      into v_blockers, v_cascaded
      from judged j;

    if pg_catalog.cardinality(v_blockers) > 0 then
      raise exception 'service-key clean-up: cannot drop % without also dropping: %',
        pg_catalog.array_to_string(
          array(select t::pg_catalog.regclass::text from pg_catalog.unnest(v_tables) t)
          || array(select f::pg_catalog.regprocedure::text from pg_catalog.unnest(v_functions) f), ', '),
        pg_catalog.array_to_string(v_blockers, '; ')
        using errcode = 'dependent_objects_still_exist',
              hint = 'Nothing was changed. Drop those objects, or make them independent of the stored key''s '
                     'table and helpers, then run the clean-up again.';
    end if;
  end if;

  ---------------------------------------------------------------------------------
  -- B. Remove.
  ---------------------------------------------------------------------------------

  -- B1. The jobs, then their history (one pass over cron.job_run_details, which can
  -- be large: a job per user).
  for i in 1 .. pg_catalog.cardinality(v_jobs) loop
    begin
      if not v_dry_run then
        perform cron.unschedule(v_jobs[i]);
      end if;
      v_unscheduled := v_unscheduled || v_jobs[i];
      v_removed_jobs := v_removed_jobs + 1;
      raise notice 'service-key clean-up: unscheduled pg_cron job "%"', v_job_labels[i];
    exception when insufficient_privilege then
      raise warning 'service-key clean-up: could not unschedule pg_cron job "%": %', v_job_labels[i], sqlerrm
        using hint = 'Its owner, or a superuser, must unschedule it.';
    end;
  end loop;
  v_found_key := v_jobs_keyed;
  -- Their history, and that of legacy jobs unscheduled earlier (by hand, or by a
  -- clean-up that lacked the rights): every row repeats the command, key included.
  if v_have_cron_history then
    begin
      with doomed as (
        select d.ctid from cron.job_run_details d
         where d.jobid = any (v_unscheduled)
          or (not exists (select 1 from cron.job j where j.jobid = d.jobid)
              and d.command ~* '\mhttp(_post|_get)?\s*\('
              and d.command ~* '/functions/v1/'
              and (d.command ~* v_helper_call_re or d.command ~* v_key_state_re
                   or d.command ~ 'sb_secret_[A-Za-z0-9_-]{8,}' or d.command ~ 'eyJ[A-Za-z0-9_-]*\.eyJ'
                   or (d.command ~* '/functions/v1/import-emails\M' and d.command ~* '\m(bearer|apikey)\M')))
      ), deleted as (
        delete from cron.job_run_details d using doomed where d.ctid = doomed.ctid and not v_dry_run
      )
      select count(*) into v_removed_history from doomed;
      if v_removed_history > 0 then
        raise notice 'service-key clean-up: deleted % cron.job_run_details row(s) of legacy jobs (their command held the key)',
          v_removed_history;
      end if;
    exception when insufficient_privilege then
      raise warning 'service-key clean-up: could not delete the legacy jobs'' cron.job_run_details rows: %', sqlerrm;
    end;
  end if;

  -- B2. The helpers, then the tables (a view over both goes with its helper).
  foreach v_statement in array v_cascaded loop
    raise notice 'service-key clean-up: dropping % along', v_statement;
  end loop;
  for v_record in
    select x.kind, x.name
      from (select 1 as step, 'function' as kind, f::pg_catalog.regprocedure::text as name
              from pg_catalog.unnest(v_functions) f
            union all
            select 2, 'table', t::pg_catalog.regclass::text
              from pg_catalog.unnest(v_tables) t) x
     order by x.step, x.name
  loop
    begin
      if not v_dry_run then
        execute pg_catalog.format('drop %s %s cascade', v_record.kind, v_record.name);
      end if;
      v_removed_objects := v_removed_objects + 1;
      v_found_key := v_found_key or v_record.kind = 'table';
      raise notice 'service-key clean-up: dropped % %', v_record.kind, v_record.name;
    exception when insufficient_privilege then
      v_found_key := v_found_key or v_record.kind = 'table';
      raise warning 'service-key clean-up: could not drop % %: %', v_record.kind, v_record.name, sqlerrm
        using hint = 'Its owner, or a superuser, must drop it.';
    end;
  end loop;

  -- B3. Key settings, database-wide and per role. pg_db_role_setting is readable by
  -- every role. Only what is set is reset: resetting an absent custom setting is a
  -- permission error for a non-superuser, for nothing.
  for v_record in
    select s.setdatabase, s.setrole, r.rolname, x.name
      from pg_catalog.pg_db_role_setting s
      left join pg_catalog.pg_roles r on r.oid = s.setrole
      cross join lateral (
        select pg_catalog.split_part(c, '=', 1) as name,
               pg_catalog.substr(c, pg_catalog.strpos(c, '=') + 1) as value
          from pg_catalog.unnest(s.setconfig) c
      ) x
     where s.setdatabase in (0, v_db_oid)
       and (s.setrole = 0 or r.rolname is not null)
       and x.name <> all (c_platform_settings)
       and (x.name = any (c_service_key_settings)
            or (x.name = any (c_encryption_key_settings) and not v_keep_encryption_key)
            -- any other app.* setting holding a service key
            or (x.name ~ '^app\.'
                and (x.value ~ '^sb_secret_'
                     or case
                          when x.value !~ '^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$' then false
                          when pg_catalog.length(pg_catalog.split_part(x.value, '.', 2)) % 4 = 1 then false
                          else pg_catalog.encode(pg_catalog.decode(pg_catalog.rpad(
                                 pg_catalog.translate(pg_catalog.split_part(x.value, '.', 2), '-_', '+/'),
                                 (pg_catalog.length(pg_catalog.split_part(x.value, '.', 2)) + 3) / 4 * 4, '='),
                                 'base64'), 'escape') ~ '"role"\s*:\s*"service_role"'
                        end)))
     order by s.setrole, s.setdatabase, x.name
  loop
    v_found_key := true;
    v_statement := case
      when v_record.setrole = 0 and v_record.setdatabase = 0 then
        pg_catalog.format('alter role all reset %I', v_record.name)
      when v_record.setrole = 0 then
        pg_catalog.format('alter database %I reset %I', pg_catalog.current_database(), v_record.name)
      when v_record.setdatabase = 0 then
        pg_catalog.format('alter role %I reset %I', v_record.rolname, v_record.name)
      else
        pg_catalog.format('alter role %I in database %I reset %I',
                          v_record.rolname, pg_catalog.current_database(), v_record.name)
    end;
    begin
      if not v_dry_run then
        execute v_statement;
      end if;
      v_cleared_settings := v_cleared_settings + 1;
      raise notice 'service-key clean-up: cleared setting % (%)', v_record.name, v_statement;
    exception when insufficient_privilege then
      v_left_settings := v_left_settings || v_statement;
      raise warning 'service-key clean-up: could not clear setting % (%); every new session still receives it',
        v_record.name, sqlerrm
        using hint = pg_catalog.format(
          'Only a superuser may reset a custom setting. Have one run (on hosted Supabase, ask '
          'support): %s; and rotate the key it holds either way.', v_statement);
    end;
  end loop;

  ---------------------------------------------------------------------------------
  -- C. Report.
  ---------------------------------------------------------------------------------

  -- What still refers to the service key or to what was removed: it fails when run,
  -- or still carries the key somewhere.
  v_removed_call_re := case when v_keep_encryption_key
                            then '\m(' || pg_catalog.array_to_string(c_key_helpers, '|') || ')\s*\('
                            else v_helper_call_re end;
  v_names := array(
    select pg_catalog.format('function %s', p.oid::pg_catalog.regprocedure)
      from pg_catalog.pg_proc p
      join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where p.oid <> all (v_kept_crypto) and p.oid <> v_self
       and (not v_dry_run or p.oid <> all (v_functions))
       and (p.prosrc ~* v_removed_call_re or p.prosrc ~* ('\m' || c_table || '\M')
            or p.prosrc ~* v_service_name_re)
       and n.nspname !~ c_system_schema_re
       and not exists (select 1 from pg_catalog.pg_depend d
                        where d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                          and d.objid = p.oid and d.deptype = 'e')
     order by 1);
  if v_have_cron then
    v_names := v_names || array(
      select pg_catalog.format('pg_cron job "%s"', coalesce(j.jobname, 'jobid ' || j.jobid))
        from cron.job j
       where j.jobname is distinct from c_dispatch_job
         and (not v_dry_run or j.jobid <> all (v_jobs))
         and (j.command ~* v_removed_call_re or j.command ~* ('\m' || c_table || '\M')
              or j.command ~* v_service_name_re or j.command ~ 'sb_secret_[A-Za-z0-9_-]{8,}')
       order by 1);
  end if;
  if pg_catalog.cardinality(v_names) > 0 then
    raise warning 'service-key clean-up: these still refer to the service key or to its removed objects: %',
      pg_catalog.array_to_string(v_names, ', ')
      using hint = 'Review them: they now fail, or still fetch or carry the service-role key.';
  end if;

  if v_removed_jobs + v_removed_objects + v_cleared_settings + v_removed_history = 0
     and not v_found_key then
    v_summary := 'service-key clean-up: no stored service key found';
  elsif v_dry_run then
    v_summary := pg_catalog.format(
      'service-key clean-up: dry run: would unschedule %s pg_cron job(s), delete %s cron.job_run_details row(s), drop %s object(s), clear %s setting(s)',
      v_removed_jobs, v_removed_history, v_removed_objects, v_cleared_settings);
  else
    v_summary := pg_catalog.format(
      'service-key clean-up: %s pg_cron job(s) unscheduled, %s object(s) dropped, %s setting(s) cleared, %s setting(s) left for a superuser',
      v_removed_jobs, v_removed_objects, v_cleared_settings, pg_catalog.cardinality(v_left_settings));
  end if;
  raise notice '%', v_summary;
  if v_found_key then
    raise warning 'service-key clean-up: this database held the service-role key: rotate it'
      using hint = 'Dashboard > Project Settings > API Keys: replace the key that was stored (legacy '
                   'service_role JWT or sb_secret_) and revoke the old one. Whoever could read the table, '
                   'the settings, cron.job or pg_net''s request queue had it.';
  end if;


  return pg_catalog.jsonb_build_object(
    'jobs', v_removed_jobs, 'history_rows', v_removed_history, 'objects', v_removed_objects,
    'settings', v_cleared_settings, 'settings_left', pg_catalog.cardinality(v_left_settings),
    'found_key', v_found_key,
    'clean', v_removed_jobs + v_removed_objects + v_cleared_settings + v_removed_history = 0 and not v_found_key,
    'dry_run', v_dry_run, 'summary', v_summary);
end
$cleanup$;
comment on function auto_sync.remove_stored_service_key(boolean) is
  'Removes the service-role key stored in the database (the stored-key setup: the auto_sync_config table, its helpers, the per-user pg_cron jobs and their history, the app.settings.* key settings), with the caller''s rights; p_dry_run: finds and reports only (deno task doctor). Returns {jobs, history_rows, objects, settings, settings_left, found_key, clean, dry_run, summary}.';
revoke execute on function auto_sync.remove_stored_service_key(boolean) from public, anon, authenticated, service_role;

select auto_sync.remove_stored_service_key();
