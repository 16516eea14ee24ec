-- Signed auto-sync: the extensions it needs, the private schemas (auto_sync, and
-- auto_sync_user_api behind the public wrappers), the wire limits the settings obey
-- (auto_sync.wire_limit), and the scheduler's tables (settings, schedules, runs, replay
-- ledger) with their indexes and grants, the interval bound their CHECK and enable()
-- share (auto_sync.interval_problem), and the endpoint rule the settings CHECKs use
-- (auto_sync.endpoint_url_problem, auto_sync.internal_hosts_problem). Functions live in
-- the files named for what they do:
--   ..._auto_sync_next_run.sql        when a schedule runs next: the one rule (next_run_at)
--   ..._auto_sync_run_lifecycle.sql   a run from insert to its end: accept, start, finish,
--                                     fail, reject, lose, and the schedule's bookkeeping
--   ..._auto_sync_dispatch.sql        signing and the dispatcher (pg_cron job auto-sync-dispatch)
--   ..._auto_sync_schedule_api.sql    enable / disable, the public schedule wrappers
--   ..._auto_sync_maintenance.sql     retention (job auto-sync-maintenance)
--   ..._mail_import_tables.sql, ..._mailbox_api.sql, ..._mail_importer.sql   mail import
--
-- `auto_sync` is not exposed through the Data API (add it to nothing in
-- config.toml's [api] schemas). The API roles get no access to its tables; a
-- signed-in user manages their own schedule only through the wrappers in `public`.

create extension if not exists pgcrypto with schema extensions;
-- In pg_catalog, as Supabase's docs create it: an extension in `public` is a Security
-- Advisor warning (extension_in_public).
create extension if not exists pg_cron with schema pg_catalog;

-- pg_net: hosted Supabase, `supabase start` and the local stack ship it; enable it
-- unless something already provides the `net` schema.
do $$
begin
  if not exists (select 1 from pg_catalog.pg_namespace where nspname = 'net') then
    create extension if not exists pg_net with schema extensions;
  end if;
end
$$;

create schema if not exists auto_sync;
comment on schema auto_sync is
  'Signed auto-sync: per-user schedules dispatched by one pg_cron job as HMAC-signed requests. Private: not exposed to the Data API.';
revoke all on schema auto_sync from public, anon, authenticated;
grant usage on schema auto_sync to service_role;
-- Postgres grants EXECUTE on new functions to PUBLIC; nothing here is public.
alter default privileges in schema auto_sync revoke execute on functions from public;

-- What a signed-in user may do runs as SECURITY DEFINER functions in this schema, which
-- the Data API does not expose; `public` holds only SECURITY INVOKER wrappers that call
-- them (the Security Advisor warns on a SECURITY DEFINER function in an exposed schema).
-- `authenticated` may use the schema and execute exactly the functions granted to it.
create schema if not exists auto_sync_user_api;
comment on schema auto_sync_user_api is
  'Signed auto-sync: the privileged side of the public wrappers (enable_auto_sync, add_mailbox, ...). Each function acts for auth.uid() only. Not exposed to the Data API.';
revoke all on schema auto_sync_user_api from public, anon, authenticated, service_role;
-- service_role too, as it may call the public wrappers: with no user it is refused there.
grant usage on schema auto_sync_user_api to authenticated, service_role;
alter default privileges in schema auto_sync_user_api revoke execute on functions from public;

-- The limits of the wire format, SQL's one home for them (functions-shared/wire/wire_limits.ts
-- is TypeScript's; both are checked against tests/fixtures/wire_vectors.json):
--   signing_key_min_bytes / signing_key_max_bytes   decoded length of a whsec_ key
--   max_signing_keys                                 keys signed with at once (a rotation)
--   request_lifetime_seconds                         exp - iat at most, and the verifier's
--                                                    timestamp tolerance either side
create function auto_sync.wire_limit(p_name text) returns integer
language sql immutable strict parallel safe set search_path = ''
as $$
  select case p_name
           when 'signing_key_min_bytes' then 24
           when 'signing_key_max_bytes' then 64
           when 'max_signing_keys' then 3
           when 'request_lifetime_seconds' then 300
         end
$$;
comment on function auto_sync.wire_limit(text) is
  'The wire format''s limits by name (signing_key_min_bytes, signing_key_max_bytes, max_signing_keys, request_lifetime_seconds); null for an unknown name. Mirrors functions-shared/wire/wire_limits.ts.';
revoke execute on function auto_sync.wire_limit(text) from public, anon, authenticated;
grant execute on function auto_sync.wire_limit(text) to service_role;

-- Where dispatch() may send its signed requests, the one rule (the settings CHECKs use
-- it; an operator asks it why an update was refused): https anywhere, plain http only
-- to a host on the database's own network, one of the local ones (127.0.0.1, localhost,
-- host.docker.internal, kong: the local stack, `supabase start`, the official compose)
-- or one the operator names in settings.internal_hosts (e.g. Coolify's supabase-kong).
-- No user name or password in the URL, no whitespace or control character.
create function auto_sync.internal_hosts_problem(p_hosts text[]) returns text
language sql immutable parallel safe set search_path = ''
as $$
  select case
    when p_hosts is null then 'is missing'
    when pg_catalog.cardinality(p_hosts) > 20 then 'holds more than 20 host names'
    when pg_catalog.array_position(p_hosts, null) is not null then 'holds a null'
    when exists (
      select 1 from pg_catalog.unnest(p_hosts) h
       where pg_catalog.length(h) > 253
          or h !~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$')
      then 'holds a name that is not a lower-case DNS host name (labels of a-z, 0-9 and inner -, dot-separated)'
  end
$$;
comment on function auto_sync.internal_hosts_problem(text[]) is
  'The settings.internal_hosts bound: null when valid (at most 20 lower-case DNS host names, each label 1-63 characters of a-z, 0-9 and inner hyphens, 253 at most), else what is wrong.';
revoke execute on function auto_sync.internal_hosts_problem(text[]) from public, anon, authenticated, service_role;

create function auto_sync.endpoint_url_problem(p_url text, p_internal_hosts text[]) returns text
language sql immutable parallel safe set search_path = ''
as $$
  with parts as (
    select pg_catalog.substring(p_url, '^([A-Za-z][A-Za-z0-9+.-]*)://') as scheme,
           pg_catalog.substring(p_url, '^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)') as authority
  )
  select case
    when p_url is null then null
    when pg_catalog.length(p_url) > 2048 then 'is longer than 2048 characters'
    when p_url ~ '[[:space:][:cntrl:]]' then 'holds whitespace or a control character'
    when p.scheme is null or p.scheme not in ('https', 'http') then 'is not an https:// URL'
    when p.authority ~ '@' then 'holds a user name or password'
    when p.authority !~ '^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?$'
      then 'has no valid host'
    when p.scheme = 'http'
         and pg_catalog.lower(pg_catalog.regexp_replace(p.authority, ':[0-9]+$', ''))
             <> all (array['127.0.0.1', 'localhost', 'host.docker.internal', 'kong']
                     || coalesce(p_internal_hosts, '{}'))
      then 'is plain http to a host that is neither local nor in settings.internal_hosts'
  end
    from parts p
$$;
comment on function auto_sync.endpoint_url_problem(text, text[]) is
  'The settings.endpoint_url rule: null when allowed (https anywhere; plain http only to 127.0.0.1, localhost, host.docker.internal, kong or a host in p_internal_hosts; no user name or password, no whitespace), else what is wrong. select auto_sync.endpoint_url_problem(url, internal_hosts) says why an update was refused.';
revoke execute on function auto_sync.endpoint_url_problem(text, text[]) from public, anon, authenticated, service_role;

-- One row: where dispatch() sends requests and how much it sends per tick. Not a
-- secret (the signing key lives in Vault). Kept in a table because
-- `ALTER DATABASE ... SET app.settings.*` is refused on hosted Supabase.
create table auto_sync.settings (
  id boolean primary key default true check (id),
  endpoint_url text,
  internal_hosts text[] not null default '{}'
    constraint settings_internal_hosts_check check (auto_sync.internal_hosts_problem(internal_hosts) is null),
  batch_limit integer not null default 500 check (batch_limit between 1 and 10000),
  request_ttl interval not null default '5 minutes'
    check (request_ttl between interval '30 seconds'
                           and auto_sync.wire_limit('request_lifetime_seconds') * interval '1 second'),
  request_timeout_ms integer not null default 5000 check (request_timeout_ms between 1000 and 60000),
  in_flight_timeout interval not null default '15 minutes' check (in_flight_timeout >= interval '1 minute'),
  jitter_fraction numeric not null default 0.1 check (jitter_fraction between 0 and 0.5),
  ack_deadline interval not null default '5 minutes'
    check (ack_deadline between interval '1 minute' and interval '1 hour'),
  max_consecutive_failures integer not null default 8
    check (max_consecutive_failures between 1 and 100),
  run_retention interval not null default '30 days' check (run_retention >= interval '1 day'),
  ledger_retention interval not null default '1 day'
    -- the verifier accepts a timestamp up to the request lifetime (300 s) either side of
    -- its clock: an id must stay in the ledger for the whole window it could be replayed in
    constraint settings_ledger_retention_check check (
      ledger_retention >= 2 * auto_sync.wire_limit('request_lifetime_seconds') * interval '1 second'),
  cron_history_retention interval not null default '7 days'
    check (cron_history_retention >= interval '1 hour'),
  allow_anonymous_users boolean not null default false,
  updated_at timestamptz not null default now(),
  -- never call a request lost while the function may still accept it
  constraint settings_ack_deadline_covers_request_ttl check (ack_deadline >= request_ttl),
  -- checked with the host names in the same row: dropping a host the URL uses is refused too
  constraint settings_endpoint_url_check check (
    auto_sync.endpoint_url_problem(endpoint_url, internal_hosts) is null)
);
insert into auto_sync.settings default values;
comment on table auto_sync.settings is
  'Single row of non-secret dispatch settings: endpoint URL, batch limit per tick, request lifetime and timeout, in-flight timeout, jitter.';
comment on column auto_sync.settings.endpoint_url is
  'URL of the cron-auto-sync Edge Function, e.g. https://<ref>.supabase.co/functions/v1/cron-auto-sync. https, or plain http to a local host or one in internal_hosts (endpoint_url_problem). dispatch() sends nothing while it is null.';
comment on column auto_sync.settings.internal_hosts is
  'Host names on the database''s own network that endpoint_url may reach over plain http (e.g. {supabase-kong} on Coolify), beside 127.0.0.1, localhost, host.docker.internal and kong. Everything else needs https (endpoint_url_problem).';
comment on column auto_sync.settings.allow_anonymous_users is
  'false (default): users signed in anonymously (the is_anonymous claim of Supabase Auth) are refused by the user API (user_api_caller): they cannot connect a mailbox, turn auto-sync on or read runs. true allows them.';
comment on column auto_sync.settings.request_ttl is
  'exp - iat of each signed request; at most the verifier''s 5-minute timestamp tolerance.';
comment on column auto_sync.settings.in_flight_timeout is
  'A run not finished after this long no longer blocks the next dispatch for its user.';
comment on column auto_sync.settings.jitter_fraction is
  'Each next run lands at now() + every * (1 + jitter_fraction * random()), spreading load.';
comment on column auto_sync.settings.ack_deadline is
  'A run still dispatched (not accepted by cron-auto-sync) this long after dispatch becomes lost. At least request_ttl: after that the function refuses the request anyway.';
comment on column auto_sync.settings.max_consecutive_failures is
  'After this many failed, rejected or lost scheduled runs in a row the schedule is paused (enabled = false, paused_reason set) until it is enabled again.';
comment on column auto_sync.settings.run_retention is
  'purge_history() deletes finished runs older than this (each schedule''s last run is kept), and our net._http_response rows older than 1 day.';
comment on column auto_sync.settings.ledger_retention is
  'purge_history() deletes replay-ledger ids older than this. At least 10 minutes: the verifier''s timestamp window is 300 s either side.';
comment on column auto_sync.settings.cron_history_retention is
  'purge_history() deletes cron.job_run_details rows of auto-sync-dispatch and auto-sync-maintenance older than this.';

-- Who may use the user API (auto_sync_user_api.*), one rule: a signed-in user
-- (auth.uid()), and, unless settings.allow_anonymous_users, not an anonymous one (Supabase
-- Auth's `is_anonymous` claim, as Supabase's RLS guide reads it from auth.jwt()). Returns
-- the user id or raises 42501 "Cannot <action>: ...". The functions that only stop work
-- (disable_auto_sync, remove_mailbox) check auth.uid() alone, so an anonymous user can
-- always undo what they did while it was allowed.
create function auto_sync.user_api_caller(p_action text) returns uuid
language plpgsql stable set search_path = ''
as $$
declare
  v_user_id uuid := auth.uid();
begin
  if v_user_id is null then
    raise exception 'Cannot %: not signed in', p_action using errcode = '42501';
  end if;
  if coalesce((auth.jwt() ->> 'is_anonymous')::boolean, false)
     and not (select s.allow_anonymous_users from auto_sync.settings s) then
    raise exception 'Cannot %: anonymous users are not allowed', p_action
      using errcode = '42501', hint = 'Sign in with an account (auto_sync.settings.allow_anonymous_users is off).';
  end if;
  return v_user_id;
end
$$;
comment on function auto_sync.user_api_caller(text) is
  'The user API''s caller: auth.uid(), refusing (42501) a caller not signed in, and an anonymous one (is_anonymous claim) unless settings.allow_anonymous_users.';
revoke execute on function auto_sync.user_api_caller(text) from public, anon, authenticated, service_role;

-- The interval bound, one rule: what is wrong with an interval, or null when it is a valid
-- schedule interval (5 minutes to 30 days). Bounded both ways: a huge interval would
-- overflow next_run_at in dispatch(); a short one would let one user take a share of every
-- tick. The schedules CHECK and auto_sync.enable() (so also the public wrapper) use it.
create function auto_sync.interval_problem(p_every interval) returns text
language sql immutable parallel safe set search_path = ''
as $$
  select case when p_every is null then 'is missing'
              when p_every < interval '5 minutes' then 'is shorter than 5 minutes'
              when p_every > interval '30 days' then 'is longer than 30 days'
         end
$$;
comment on function auto_sync.interval_problem(interval) is
  'The schedule interval bound (5 minutes to 30 days): null for a valid interval, else what is wrong (''is shorter than 5 minutes'', ...). Used by the schedules CHECK and auto_sync.enable().';
revoke execute on function auto_sync.interval_problem(interval) from public, anon, authenticated, service_role;

create table auto_sync.schedules (
  user_id uuid primary key references auth.users (id) on delete cascade,
  every interval not null default '30 minutes'
    constraint schedules_every_check check (auto_sync.interval_problem(every) is null),
  enabled boolean not null default true,
  next_run_at timestamptz not null default now(),
  last_run_id uuid,
  last_outcome text,
  last_outcome_at timestamptz,
  consecutive_failures integer not null default 0 check (consecutive_failures >= 0),
  paused_reason text,
  last_success_at timestamptz,
  last_error text,
  last_error_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index schedules_due_idx on auto_sync.schedules (next_run_at) where enabled;
comment on table auto_sync.schedules is 'One auto-sync schedule per user: how often, whether enabled, when next due, how the last run ended.';
comment on column auto_sync.schedules.consecutive_failures is
  'Scheduled runs that ended failed, rejected or lost since the last successful (succeeded, partial or skipped) run. Drives the retry backoff and the pause.';
comment on column auto_sync.schedules.paused_reason is
  'Why the schedule was paused after settings.max_consecutive_failures failures in a row; cleared by enable().';
comment on column auto_sync.schedules.last_success_at is 'When a run of this user last ended succeeded or partial.';
comment on column auto_sync.schedules.last_error is 'Error of the last run that ended failed, rejected or lost. Never holds a credential.';
comment on column auto_sync.schedules.last_error_at is 'When that run ended.';

create table auto_sync.runs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  trigger text not null check (trigger in ('schedule', 'manual')),
  status text not null check (status in (
    'dispatched', -- signed request queued in pg_net
    'accepted',   -- cron-auto-sync verified it (or a user asked for a sync)
    'running',    -- the importer started
    'succeeded', 'partial', 'skipped', 'failed', 'rejected', 'lost'
  )),
  scheduled_for timestamptz,
  dispatched_at timestamptz,
  accepted_at timestamptz,
  started_at timestamptz,
  must_finish_by timestamptz,
  finished_at timestamptz,
  net_request_id bigint,
  error text,
  details jsonb,
  created_at timestamptz not null default now()
);
create index runs_in_flight_idx on auto_sync.runs (user_id, created_at)
  where status in ('dispatched', 'accepted', 'running');
create index runs_user_created_idx on auto_sync.runs (user_id, created_at desc);
-- For purge_history() (range deletes) and reconcile_runs() (run by pg_net id).
create index runs_created_at_idx on auto_sync.runs (created_at);
create index runs_net_request_idx on auto_sync.runs (net_request_id) where net_request_id is not null;
comment on table auto_sync.runs is
  'One row per dispatched request or manual sync. Written by the function, so it is the truth about a run (cron.job_run_details only says the request was queued).';
comment on column auto_sync.runs.net_request_id is 'pg_net request id (net._http_response.id) of the signed request.';
comment on column auto_sync.runs.must_finish_by is
  'When the function instance running this run is gone at the latest (its wall clock). A run still running 5 seconds after it is lost (reconcile_stopped_runs).';
comment on column auto_sync.runs.error is 'Why the run did not succeed, for humans. Never holds a credential.';

-- Every webhook-id that passed signature verification, so a captured request
-- cannot be replayed inside its validity window.
create table auto_sync.used_request_ids (
  request_id text primary key check (length(request_id) between 1 and 256),
  used_at timestamptz not null default now()
);
create index used_request_ids_used_at_idx on auto_sync.used_request_ids (used_at);
comment on table auto_sync.used_request_ids is
  'Replay ledger: webhook-ids already accepted by cron-auto-sync. The primary key makes the check-and-insert atomic.';

-- RLS on every table, with no policy for anon or authenticated: the API roles
-- read nothing here. service_role bypasses RLS; the owner (postgres) is exempt.
alter table auto_sync.settings enable row level security;
alter table auto_sync.schedules enable row level security;
alter table auto_sync.runs enable row level security;
alter table auto_sync.used_request_ids enable row level security;

revoke all on all tables in schema auto_sync from public, anon, authenticated;
grant select on all tables in schema auto_sync to service_role;
