-- Signed auto-sync: signing and the dispatcher pg_cron runs every 10 seconds (every minute
-- on pg_cron older than 1.5).
--
--   auto_sync.signing_key_bytes(secret) a whsec_ secret's key bytes, or null if out of bounds
--   auto_sync.signing_keys()            the Vault keys, newest first
--   auto_sync.request_claims(...)       the claims body of one request
--   auto_sync.sign(id, ts, payload, keys)  the webhook-signature header value
--   auto_sync.due_schedules             view: which schedules are due
--   auto_sync.send_requests(...)        queues one signed request per due schedule
--   auto_sync.dispatch()                send_requests, one schedule at a time if a row breaks the batch
--   auto_sync.dispatch_schedule()       the dispatch job's schedule on this pg_cron
--   pg_cron job auto-sync-dispatch      on that schedule, `select auto_sync.dispatch()`
--
-- Wire format: Standard Webhooks v1. For each due schedule dispatch() queues one
-- pg_net POST with
--   webhook-id:        the run id
--   webhook-timestamp: unix seconds
--   webhook-signature: v1,<base64 HMAC-SHA256(key, id.timestamp.body)> [one per key]
--   body:              {"aud":"cron-auto-sync","scope":"import-emails","sub":<user>,
--                       "run_id":<run>,"iat":<s>,"exp":<s>}
-- The signing keys stay in Vault (names starting 'auto_sync_signing_key:', values
-- 'whsec_<base64>'); only signatures leave the database.

-- A whsec_ secret's HMAC key bytes, or null when the function's verifier would refuse
-- it (functions-shared/wire/standard_webhooks.ts parseSecret, the same rule): 'whsec_' then
-- canonical base64 (what encoding the bytes again gives back) of
-- wire_limit('signing_key_min_bytes') to wire_limit('signing_key_max_bytes') bytes.
create function auto_sync.signing_key_bytes(p_secret text) returns bytea
language plpgsql immutable strict set search_path = ''
as $$
declare
  v_encoded text := substr(p_secret, 7);
  v_bytes bytea;
begin
  if not starts_with(p_secret, 'whsec_') or v_encoded !~ '^[A-Za-z0-9+/]+={0,2}$' then
    return null;
  end if;
  begin
    v_bytes := decode(v_encoded, 'base64');
  exception when invalid_parameter_value then  -- a length that is no base64
    return null;
  end;
  -- encode() breaks lines every 76 characters; the secret is one line
  if replace(encode(v_bytes, 'base64'), E'\n', '') <> v_encoded
     or length(v_bytes) not between auto_sync.wire_limit('signing_key_min_bytes')
                                and auto_sync.wire_limit('signing_key_max_bytes') then
    return null;
  end if;
  return v_bytes;
end
$$;
comment on function auto_sync.signing_key_bytes(text) is
  'HMAC key bytes of a whsec_<base64> secret, or null unless it is canonical base64 of 24 to 64 bytes (wire_limit), exactly the keys cron-auto-sync accepts.';

-- The Vault keys dispatch() signs with, newest first. Two keys = a rotation in
-- progress: every request then carries one signature per key. Fails loudly on a
-- missing or malformed key, so a broken setup dispatches nothing instead of
-- sending requests no verifier accepts.
create function auto_sync.signing_keys() returns bytea[]
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_keys bytea[] := '{}';
  v_key bytea;
  v_secret record;
begin
  for v_secret in
    select s.name, s.decrypted_secret
      from vault.decrypted_secrets s
     where starts_with(s.name, 'auto_sync_signing_key:')
     order by s.created_at desc, s.name
  loop
    v_key := auto_sync.signing_key_bytes(v_secret.decrypted_secret);
    if v_key is null then
      raise exception 'Cannot sign: Vault secret "%" is not a whsec_ key', v_secret.name
        using hint = 'whsec_ followed by canonical base64 of 24 to 64 bytes, as cron-auto-sync accepts';
    end if;
    v_keys := v_keys || v_key;
  end loop;
  if cardinality(v_keys) = 0 then
    raise exception 'Cannot sign: no Vault secret named "auto_sync_signing_key:<label>"';
  end if;
  if cardinality(v_keys) > auto_sync.wire_limit('max_signing_keys') then
    raise exception 'Cannot sign: % signing keys in Vault; keep at most % during a rotation',
      cardinality(v_keys), auto_sync.wire_limit('max_signing_keys');
  end if;
  return v_keys;
end
$$;
comment on function auto_sync.signing_keys() is
  'Decoded HMAC keys from Vault secrets named auto_sync_signing_key:<label>, newest first. Raises when none or malformed.';

-- The claims body of one signed request: the one SQL builder (dispatch() and the tests'
-- SQL use it; functions-shared/wire/client/signed_request.ts buildClaims is TypeScript's). pg_net
-- sends its jsonb::text, byte for byte what the vectors in
-- tests/fixtures/wire_vectors.json say.
create function auto_sync.request_claims(p_user_id uuid, p_run_id uuid, p_iat bigint, p_lifetime_seconds bigint)
returns jsonb
language sql immutable strict set search_path = ''
as $$
  select jsonb_build_object(
           'aud', 'cron-auto-sync',
           'scope', 'import-emails',
           'sub', p_user_id,
           'run_id', p_run_id,
           'iat', p_iat,
           'exp', p_iat + p_lifetime_seconds)
$$;
comment on function auto_sync.request_claims(uuid, uuid, bigint, bigint) is
  'Claims of a signed auto-sync request: aud cron-auto-sync, scope import-emails, sub, run_id, iat, exp = iat + lifetime.';

-- The webhook-signature header value for one request: 'v1,<sig>' per key,
-- space-separated. p_payload must be exactly the text pg_net will send
-- (jsonb::text, which pg_net converts to UTF-8).
create function auto_sync.sign(p_id text, p_timestamp bigint, p_payload text, p_keys bytea[])
returns text
language sql immutable strict set search_path = ''
as $$
  select string_agg(
           'v1,' || encode(
             extensions.hmac(convert_to(p_id || '.' || p_timestamp || '.' || p_payload, 'UTF8'), k.key, 'sha256'),
             'base64'),
           ' ' order by k.ord)
    from unnest(p_keys) with ordinality as k (key, ord)
$$;
comment on function auto_sync.sign(text, bigint, text, bytea[]) is
  'Standard Webhooks v1 signature header for id.timestamp.payload, one v1,<base64> per key.';

-- The one definition of "due": enabled, next_run_at reached, and no run of the user
-- in flight (auto_sync.runs_in_flight, ..._auto_sync_run_lifecycle.sql).
-- dispatch() takes settings.batch_limit of these, oldest first, with
-- `for update of d skip locked`; the scale benchmark EXPLAINs the same query. No ORDER
-- BY here: a plain view is flattened into dispatch()'s query, so LIMIT and the row
-- locks apply together (an ordered view would lock every due row before the limit).
create view auto_sync.due_schedules as
  select s.user_id, s.next_run_at
    from auto_sync.schedules s
   where s.enabled
     and s.next_run_at <= now()
     and not exists (select 1 from auto_sync.runs_in_flight f where f.user_id = s.user_id);
comment on view auto_sync.due_schedules is
  'Schedules due now: enabled, next_run_at reached, no run of the user in flight (younger than settings.in_flight_timeout). dispatch() locks up to settings.batch_limit of them.';
revoke all on auto_sync.due_schedules from public, anon, authenticated, service_role;

-- Queues one signed request for each due schedule (only p_user_id's when given), up
-- to settings.batch_limit. Set-based so a tick costs a few statements whatever the
-- batch size; the pg_net insert, the run row and the schedule update
-- (record_dispatched_runs, in ..._auto_sync_run_lifecycle.sql) commit together or not at
-- all. Returns how many were queued.
create function auto_sync.send_requests(
  p_settings auto_sync.settings, p_keys bytea[], p_timestamp bigint, p_user_id uuid
) returns integer
language plpgsql volatile set search_path = ''
as $$
declare
  v_count integer;
begin
  with due as (
    select d.user_id, d.next_run_at, gen_random_uuid() as run_id
      from auto_sync.due_schedules d
     where p_user_id is null or d.user_id = p_user_id
     order by d.next_run_at
     limit p_settings.batch_limit
       for update of d skip locked
  ), claimed as (
    select d.user_id, d.next_run_at, d.run_id,
           auto_sync.request_claims(d.user_id, d.run_id, p_timestamp,
                                    floor(extract(epoch from p_settings.request_ttl))::bigint) as body
      from due d
  ), sent as (
    select c.user_id, c.next_run_at, c.run_id,
           net.http_post(
             url := p_settings.endpoint_url,
             body := c.body,
             headers := jsonb_build_object(
               'Content-Type', 'application/json',
               'webhook-id', c.run_id::text,
               'webhook-timestamp', p_timestamp::text,
               'webhook-signature', auto_sync.sign(c.run_id::text, p_timestamp, c.body::text, p_keys)
             ),
             timeout_milliseconds := p_settings.request_timeout_ms
           ) as net_request_id
      from claimed c
  )
  -- the run rows and the schedules' next run: the run lifecycle's first step
  select coalesce(auto_sync.record_dispatched_runs(
           array_agg(s.run_id), array_agg(s.user_id), array_agg(s.next_run_at), array_agg(s.net_request_id),
           p_settings.jitter_fraction), 0)
    into v_count
    from sent s;
  return v_count;
end
$$;
comment on function auto_sync.send_requests(auto_sync.settings, bytea[], bigint, uuid) is
  'dispatch()''s worker: queues one signed request per due schedule (only the given user''s when not null), up to settings.batch_limit, in one statement. Returns how many.';

-- The pg_cron job's entry point. A missing or malformed key stops everything (nothing
-- is sent that no verifier accepts). One schedule whose values break the batch (a data
-- error such as an overflowing next_run_at) does not: the batch is redone one schedule
-- at a time, the bad ones skipped, reported (WARNING in the log) and handed to
-- mark_schedule_broken (last_error, an hour ahead), the others sent.
create function auto_sync.dispatch() returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_settings auto_sync.settings;
  v_keys bytea[];
  v_timestamp bigint := floor(extract(epoch from now()))::bigint;
  v_user_id uuid;
  v_count integer;
begin
  select * into strict v_settings from auto_sync.settings;
  if v_settings.endpoint_url is null then
    raise warning 'auto_sync.dispatch: settings.endpoint_url is not set; nothing dispatched';
    return 0;
  end if;
  v_keys := auto_sync.signing_keys();

  begin
    v_count := auto_sync.send_requests(v_settings, v_keys, v_timestamp, null);
  exception when data_exception then
    raise warning 'auto_sync.dispatch: the batch failed (%); dispatching one schedule at a time', sqlerrm;
    v_count := 0;
    for v_user_id in
      select d.user_id from auto_sync.due_schedules d order by d.next_run_at limit v_settings.batch_limit
    loop
      begin
        v_count := v_count + auto_sync.send_requests(v_settings, v_keys, v_timestamp, v_user_id);
      exception when data_exception then
        raise warning 'auto_sync.dispatch: skipped the schedule of user %: %', v_user_id, sqlerrm;
        perform auto_sync.mark_schedule_broken(
          v_user_id, 'Skipped by the dispatcher: this schedule''s settings are invalid');
      end;
    end loop;
  end;
  return v_count;
end
$$;
comment on function auto_sync.dispatch() is
  'Run by the pg_cron job auto-sync-dispatch (auto_sync.dispatch_schedule()): queues one signed request per due, enabled schedule with no run in flight, up to settings.batch_limit; a schedule whose values make that fail is skipped and reported, never the whole tick. Returns how many were queued.';

revoke execute on function auto_sync.signing_key_bytes(text) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.signing_keys() from public, anon, authenticated, service_role;
revoke execute on function auto_sync.request_claims(uuid, uuid, bigint, bigint) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.sign(text, bigint, text, bytea[]) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.send_requests(auto_sync.settings, bytea[], bigint, uuid) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.dispatch() from public, anon, authenticated, service_role;

-- pg_cron 1.5 and later (Supabase runs 1.6) take schedules in seconds: every 10 s, a due
-- schedule waits at most 10 s instead of a minute, and a backlog larger than batch_limit
-- drains six times faster. An idle tick costs about a millisecond (BENCHMARKS.md). Older
-- pg_cron gets the one-minute schedule.
create function auto_sync.dispatch_schedule() returns text
language sql stable set search_path = ''
as $$
  select case when string_to_array(e.extversion, '.')::int[] >= '{1,5}' then '10 seconds'
              else '* * * * *' end
    from pg_catalog.pg_extension e
   where e.extname = 'pg_cron'
$$;
comment on function auto_sync.dispatch_schedule() is
  'The schedule of the pg_cron job auto-sync-dispatch on the installed pg_cron: 10 seconds from pg_cron 1.5, else every minute.';
revoke execute on function auto_sync.dispatch_schedule() from public, anon, authenticated, service_role;

-- The one cron job, installed idempotently. Its command holds no secret.
select cron.unschedule(jobid) from cron.job where jobname = 'auto-sync-dispatch';
select cron.schedule('auto-sync-dispatch', auto_sync.dispatch_schedule(), 'select auto_sync.dispatch()');
