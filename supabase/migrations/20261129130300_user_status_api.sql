-- What a signed-in user's app can see of its own syncs (public, callable over the Data
-- API; each acts for the caller only, and refuses anonymous users unless
-- auto_sync.settings.allow_anonymous_users: auto_sync.user_api_caller):
--   public.get_auto_sync_run(run_id)     one of the caller's runs, e.g. the run_id "sync now"
--                                        answered with; another user's id returns no row
--   public.list_auto_sync_runs(limit)    the caller's most recent runs, newest first (1-100)
--   public.get_mailbox_states()          each of the caller's mailboxes with its state, and
--                                        whether it needs the user (reconnect needed, paused,
--                                        credential refused)
-- Each is a SECURITY INVOKER wrapper of the SECURITY DEFINER function of the same name in
-- auto_sync_user_api (see ..._auto_sync_tables.sql). A run's error is shown through
-- auto_sync.run_error_for_user: the importer's own text (written for users), or a generic
-- sentence where the run never reached the importer (pg_net's and HTTP details stay with
-- the operator).

-- The error text a user may read for a run, one rule. The importer writes its errors for
-- users (import_error.ts: generic, one line, no credential); what the maintenance job
-- writes for a request that never reached the importer (pg_net's curl message, an HTTP
-- status of the function) is the operator's business.
create function auto_sync.run_error_for_user(p_status text, p_accepted_at timestamptz, p_error text)
returns text
language sql immutable parallel safe set search_path = ''
as $$
  select case
    when p_error is null then null
    when p_status = 'rejected' then 'The sync request was refused before the import started; auto-sync tries again'
    when p_accepted_at is null then 'The sync request did not reach the importer; auto-sync tries again'
    else pg_catalog.left(pg_catalog.regexp_replace(p_error, '[[:cntrl:]]+', ' ', 'g'), 500)
  end
$$;
comment on function auto_sync.run_error_for_user(text, timestamptz, text) is
  'The error a user reads for a run: the importer''s text (control characters replaced, 500 characters at most), or a generic sentence for a run that never reached the importer (rejected, not delivered, never acknowledged).';
revoke execute on function auto_sync.run_error_for_user(text, timestamptz, text) from public, anon, authenticated, service_role;

-- A user's runs as their app sees them: the one projection get_auto_sync_run and
-- list_auto_sync_runs return (counts from the run's details, the error a user may read).
create function auto_sync.user_runs(p_user_id uuid)
returns table (
  id uuid, trigger text, status text, fetched bigint, inserted bigint, duplicates bigint,
  has_more boolean, error text, created_at timestamptz, started_at timestamptz,
  finished_at timestamptz
)
language sql stable set search_path = ''
as $$
  select r.id, r.trigger, r.status, (r.details ->> 'fetched')::bigint,
         (r.details ->> 'inserted')::bigint, (r.details ->> 'duplicates')::bigint,
         (r.details ->> 'has_more')::boolean,
         auto_sync.run_error_for_user(r.status, r.accepted_at, r.error),
         r.created_at, r.started_at, r.finished_at
    from auto_sync.runs r
   where r.user_id = p_user_id
$$;
comment on function auto_sync.user_runs(uuid) is
  'One user''s runs as the user API shows them (get_auto_sync_run, list_auto_sync_runs): status, counts, the error a user may read, timestamps.';
revoke execute on function auto_sync.user_runs(uuid) from public, anon, authenticated, service_role;

create function auto_sync_user_api.get_auto_sync_run(p_run_id uuid)
returns table (
  id uuid, trigger text, status text, fetched bigint, inserted bigint, duplicates bigint,
  has_more boolean, error text, created_at timestamptz, started_at timestamptz,
  finished_at timestamptz
)
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_user_id uuid := auto_sync.user_api_caller('read sync runs');
begin
  return query
    select * from auto_sync.user_runs(v_user_id) r where r.id = p_run_id;
end
$$;
comment on function auto_sync_user_api.get_auto_sync_run(uuid) is
  'Behind public.get_auto_sync_run: one of the signed-in user''s runs; no row for an unknown run or another user''s.';

create function auto_sync_user_api.list_auto_sync_runs(p_limit integer)
returns table (
  id uuid, trigger text, status text, fetched bigint, inserted bigint, duplicates bigint,
  has_more boolean, error text, created_at timestamptz, started_at timestamptz,
  finished_at timestamptz
)
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_user_id uuid := auto_sync.user_api_caller('list sync runs');
begin
  if p_limit is null or p_limit not between 1 and 100 then
    raise exception 'Cannot list sync runs: limit "%" is not between 1 and 100', p_limit
      using errcode = '22023';
  end if;
  return query
    select * from auto_sync.user_runs(v_user_id) r
     order by r.created_at desc, r.id
     limit p_limit;
end
$$;
comment on function auto_sync_user_api.list_auto_sync_runs(integer) is
  'Behind public.list_auto_sync_runs: the signed-in user''s most recent runs, newest first (1 to 100).';

-- A mailbox's state, in the order that matters to its user: what needs them first.
--   reconnect_needed    the provider refused the grant: connect the mailbox again
--   paused              imports stopped on their own (paused_reason): needs the user
--   credential_refused  the last login was refused (below the pause): needs the user
--   disabled            the user turned it off
--   syncing             an import holds it now
--   failing             the last import of it failed (last_error)
--   waiting             never synced yet
--   ok                  synced, no error
create function auto_sync_user_api.get_mailbox_states()
returns table (
  mailbox_id uuid, label text, host text, username text, enabled boolean, state text,
  needs_user boolean, paused_reason text, last_error text, last_synced_at timestamptz
)
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_user_id uuid := auto_sync.user_api_caller('read mailbox states');
begin
  return query
    select s.id, s.label, s.host, s.username, s.enabled, s.state,
           s.state in ('reconnect_needed', 'paused', 'credential_refused'), s.paused_reason,
           s.last_error, s.last_synced_at
      from (
        select m.*,
               case when m.reconnect_needed_at is not null then 'reconnect_needed'
                    when m.paused_reason is not null then 'paused'
                    when m.consecutive_auth_failures > 0 then 'credential_refused'
                    when not m.enabled then 'disabled'
                    when m.import_lease_until > pg_catalog.now() then 'syncing'
                    when m.last_error is not null then 'failing'
                    when m.last_synced_at is null then 'waiting'
                    else 'ok' end as state
          from public.mailboxes m
         where m.user_id = v_user_id
      ) s
     order by s.created_at, s.id;
end
$$;
comment on function auto_sync_user_api.get_mailbox_states() is
  'Behind public.get_mailbox_states: the signed-in user''s mailboxes with their state (reconnect_needed, paused, credential_refused, disabled, syncing, failing, waiting, ok) and needs_user.';

create function public.get_auto_sync_run(p_run_id uuid)
returns table (
  id uuid, trigger text, status text, fetched bigint, inserted bigint, duplicates bigint,
  has_more boolean, error text, created_at timestamptz, started_at timestamptz,
  finished_at timestamptz
)
language sql stable security invoker set search_path = ''
as $$ select * from auto_sync_user_api.get_auto_sync_run(p_run_id) $$;
comment on function public.get_auto_sync_run(uuid) is
  'Signed-in user: one of your runs by id (e.g. the run_id "sync now" answered): trigger (schedule | manual), status (dispatched, accepted, running, succeeded, partial, skipped, failed, rejected, lost), messages fetched / inserted / duplicates, has_more, an error you may show, timestamps. No row for an unknown run or another user''s.';

create function public.list_auto_sync_runs(p_limit integer default 20)
returns table (
  id uuid, trigger text, status text, fetched bigint, inserted bigint, duplicates bigint,
  has_more boolean, error text, created_at timestamptz, started_at timestamptz,
  finished_at timestamptz
)
language sql stable security invoker set search_path = ''
as $$ select * from auto_sync_user_api.list_auto_sync_runs(p_limit) $$;
comment on function public.list_auto_sync_runs(integer) is
  'Signed-in user: your most recent runs, newest first (p_limit 1 to 100, default 20), as get_auto_sync_run returns one.';

create function public.get_mailbox_states()
returns table (
  mailbox_id uuid, label text, host text, username text, enabled boolean, state text,
  needs_user boolean, paused_reason text, last_error text, last_synced_at timestamptz
)
language sql stable security invoker set search_path = ''
as $$ select * from auto_sync_user_api.get_mailbox_states() $$;
comment on function public.get_mailbox_states() is
  'Signed-in user: each of your mailboxes with its state: reconnect_needed (connect it again), paused or credential_refused (update the password or token): needs_user; disabled, syncing, failing, waiting (never synced), ok.';

-- Supabase grants anon everything in public by default: take it back.
revoke execute on function auto_sync_user_api.get_auto_sync_run(uuid) from public, anon;
revoke execute on function auto_sync_user_api.list_auto_sync_runs(integer) from public, anon;
revoke execute on function auto_sync_user_api.get_mailbox_states() from public, anon;
grant execute on function auto_sync_user_api.get_auto_sync_run(uuid) to authenticated, service_role;
grant execute on function auto_sync_user_api.list_auto_sync_runs(integer) to authenticated, service_role;
grant execute on function auto_sync_user_api.get_mailbox_states() to authenticated, service_role;
revoke execute on function public.get_auto_sync_run(uuid) from public, anon;
revoke execute on function public.list_auto_sync_runs(integer) from public, anon;
revoke execute on function public.get_mailbox_states() from public, anon;
grant execute on function public.get_auto_sync_run(uuid) to authenticated;
grant execute on function public.list_auto_sync_runs(integer) to authenticated;
grant execute on function public.get_mailbox_states() to authenticated;
