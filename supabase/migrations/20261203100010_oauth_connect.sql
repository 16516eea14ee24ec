-- OAuth connect flow (issue 17 item 2), the database side of functions oauth-connect and
-- oauth-callback (functions-shared/oauth_connect/). Three steps, each bound to the user:
--
--   1. oauth-connect (the user's token): auto_sync.begin_oauth_connect stores the flow's
--      state (only its SHA-256), PKCE verifier, provider and return URL for 10 minutes.
--   2. oauth-callback (the browser, no token): auto_sync.take_oauth_state spends the state
--      once; the function redeems the code with the verifier, then
--      auto_sync.park_oauth_connection puts the refresh token into Vault under a one-time
--      ticket (only its SHA-256 stored) for the same user, 10 minutes, and the browser goes
--      back to the app with the ticket.
--   3. oauth-connect/finish (the user's token again): auto_sync.finish_oauth_connect turns
--      the ticket into the mailbox, only for the user who started the flow.
--
-- Why step 3: the callback is a browser navigation that carries no user token. Without a
-- second check, a victim who completes an attacker's authorization URL would attach the
-- victim's mailbox to the attacker's account (and the reverse: the attacker's mail into the
-- victim's). The ticket is worth nothing in another user's session.
--
-- All for the functions, which connect as postgres: no API role may call them, and no
-- table here is readable by anyone else. Expired rows are purged as new flows begin.

create table auto_sync.oauth_states (
  state_sha256 text primary key check (state_sha256 ~ '^[0-9a-f]{64}$'),
  user_id uuid not null references auth.users (id) on delete cascade,
  provider text not null check (provider ~ '^[a-z][a-z0-9_-]{0,31}$'),
  code_verifier text not null check (length(code_verifier) between 43 and 128),
  return_to text not null check (length(return_to) <= 2000),
  expires_at timestamptz not null
);
create index oauth_states_user_idx on auto_sync.oauth_states (user_id);
comment on table auto_sync.oauth_states is
  'Connect flows under way: the state''s SHA-256 (never the state), its user, provider, PKCE verifier and return URL; single use, 10 minutes.';

create table auto_sync.oauth_pending_connections (
  ticket_sha256 text primary key check (ticket_sha256 ~ '^[0-9a-f]{64}$'),
  user_id uuid not null references auth.users (id) on delete cascade,
  provider text not null check (provider ~ '^[a-z][a-z0-9_-]{0,31}$'),
  address text not null check (length(address) between 3 and 320 and address !~ '[[:cntrl:]]'),
  host text not null,
  port integer not null check (port between 1 and 65535),
  secret_id uuid not null,
  expires_at timestamptz not null
);
create index oauth_pending_user_idx on auto_sync.oauth_pending_connections (user_id);
comment on table auto_sync.oauth_pending_connections is
  'Redeemed connects waiting for their user to finish (the ticket''s SHA-256); the refresh token is in Vault (secret_id), deleted with the row.';

alter table auto_sync.oauth_states enable row level security;
alter table auto_sync.oauth_pending_connections enable row level security;
revoke all on auto_sync.oauth_states, auto_sync.oauth_pending_connections from public, anon, authenticated, service_role;

-- Deleting a pending connection (finished, expired, its user deleted) deletes its Vault
-- secret, as for mailbox credentials (..._mail_import_tables.sql).
create trigger delete_pending_secret after delete on auto_sync.oauth_pending_connections
  for each row execute function auto_sync.delete_mailbox_secret();

create function auto_sync.begin_oauth_connect(
  p_user_id uuid, p_is_anonymous boolean, p_provider text, p_state_sha256 text,
  p_code_verifier text, p_return_to text
) returns void
language plpgsql volatile security definer set search_path = ''
as $$
declare
  c_max_flows constant integer := 5;
begin
  if auto_sync.refuses_anonymous(p_is_anonymous) then
    raise exception 'Cannot connect mailbox: anonymous users are not allowed' using errcode = '42501';
  end if;
  delete from auto_sync.oauth_states where expires_at <= now();
  delete from auto_sync.oauth_pending_connections where expires_at <= now();
  perform pg_advisory_xact_lock(hashtextextended('auto_sync.oauth_states:' || p_user_id::text, 0));
  if (select count(*) from auto_sync.oauth_states s where s.user_id = p_user_id) >= c_max_flows then
    raise exception 'Cannot connect mailbox: at most % connects under way', c_max_flows using errcode = '54000';
  end if;
  insert into auto_sync.oauth_states (state_sha256, user_id, provider, code_verifier, return_to, expires_at)
  values (p_state_sha256, p_user_id, p_provider, p_code_verifier, p_return_to, now() + interval '10 minutes');
end
$$;
comment on function auto_sync.begin_oauth_connect(uuid, boolean, text, text, text, text) is
  'oauth-connect: record a connect flow for the user (state as SHA-256, PKCE verifier, return URL), 10 minutes, at most 5 at once; anonymous users refused (refuses_anonymous).';

create function auto_sync.take_oauth_state(p_state_sha256 text)
returns table (user_id uuid, provider text, code_verifier text, return_to text)
language sql volatile security definer set search_path = ''
as $$
  delete from auto_sync.oauth_states s
   where s.state_sha256 = p_state_sha256 and s.expires_at > now()
  returning s.user_id, s.provider, s.code_verifier, s.return_to
$$;
comment on function auto_sync.take_oauth_state(text) is
  'oauth-callback: spend a flow''s state (SHA-256) once; no row for an unknown, spent or expired one.';

create function auto_sync.park_oauth_connection(
  p_user_id uuid, p_provider text, p_address text, p_host text, p_port integer,
  p_refresh_token text, p_ticket_sha256 text
) returns void
language plpgsql volatile security definer set search_path = ''
as $$
begin
  if auto_sync.credential_problem(p_refresh_token) is not null then
    raise exception 'Cannot connect mailbox: the refresh token %', auto_sync.credential_problem(p_refresh_token)
      using errcode = '22023';
  end if;
  insert into auto_sync.oauth_pending_connections
    (ticket_sha256, user_id, provider, address, host, port, secret_id, expires_at)
  values (p_ticket_sha256, p_user_id, p_provider, p_address, p_host, p_port,
          vault.create_secret(p_refresh_token, 'oauth_pending:' || p_ticket_sha256, 'OAuth refresh token, not yet connected'),
          now() + interval '10 minutes');
end
$$;
comment on function auto_sync.park_oauth_connection(uuid, text, text, text, integer, text, text) is
  'oauth-callback: keep a redeemed connect''s refresh token in Vault under a one-time ticket (SHA-256) for its user, 10 minutes.';

-- The mailbox of this user, provider and address is updated (a reconnect: new token,
-- reconnect_needed and a pause cleared); else a new one is made from the preset's server,
-- within the user's 10 mailboxes.
create function auto_sync.finish_oauth_connect(
  p_user_id uuid, p_is_anonymous boolean, p_ticket_sha256 text
) returns uuid
language plpgsql volatile security definer set search_path = ''
as $$
declare
  c_max_mailboxes constant integer := 10;
  v_pending auto_sync.oauth_pending_connections;
  v_token text;
  v_mailbox_id uuid;
  v_secret_id uuid;
begin
  if auto_sync.refuses_anonymous(p_is_anonymous) then
    raise exception 'Cannot connect mailbox: anonymous users are not allowed' using errcode = '42501';
  end if;
  -- Another user's ticket, a spent or an expired one: nothing, and nothing is spent.
  select * into v_pending from auto_sync.oauth_pending_connections p
   where p.ticket_sha256 = p_ticket_sha256 and p.user_id = p_user_id and p.expires_at > now()
     for update;
  if not found then
    return null;
  end if;
  select s.decrypted_secret into strict v_token from vault.decrypted_secrets s where s.id = v_pending.secret_id;
  perform pg_advisory_xact_lock(hashtextextended('auto_sync.mailboxes:' || p_user_id::text, 0));
  select m.id into v_mailbox_id from public.mailboxes m
   where m.user_id = p_user_id and m.oauth_provider = v_pending.provider
     and lower(m.username) = lower(v_pending.address)
   order by m.created_at limit 1 for update;
  if found then
    update public.mailboxes
       set host = v_pending.host, port = v_pending.port, tls_mode = 'tls',
           reconnect_needed_at = null, paused_reason = null, consecutive_auth_failures = 0,
           last_error = null, updated_at = now()
     where id = v_mailbox_id;
    select c.secret_id into v_secret_id from auto_sync.mailbox_credentials c where c.mailbox_id = v_mailbox_id;
    perform vault.update_secret(v_secret_id, v_token);
  else
    if (select count(*) from public.mailboxes m where m.user_id = p_user_id) >= c_max_mailboxes then
      raise exception 'Cannot connect mailbox: at most % mailboxes per user', c_max_mailboxes using errcode = '54000';
    end if;
    insert into public.mailboxes (user_id, host, port, username, tls_mode, auth_kind, oauth_provider, label)
    values (p_user_id, v_pending.host, v_pending.port, v_pending.address, 'tls', 'oauth2', v_pending.provider,
            left(v_pending.address, 100))
    returning id into v_mailbox_id;
    insert into auto_sync.mailbox_credentials (mailbox_id, secret_id)
    values (v_mailbox_id, vault.create_secret(v_token, 'mailbox:' || v_mailbox_id, 'OAuth refresh token'));
  end if;
  delete from auto_sync.oauth_pending_connections where ticket_sha256 = p_ticket_sha256;
  return v_mailbox_id;
end
$$;
comment on function auto_sync.finish_oauth_connect(uuid, boolean, text) is
  'oauth-connect/finish: turn the user''s own ticket (SHA-256) into their mailbox (created from the preset''s server, or the same provider and address updated: new token, reconnect_needed cleared). Null for another user''s, a spent or an expired ticket.';

revoke execute on function auto_sync.begin_oauth_connect(uuid, boolean, text, text, text, text) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.take_oauth_state(text) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.park_oauth_connection(uuid, text, text, text, integer, text, text) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.finish_oauth_connect(uuid, boolean, text) from public, anon, authenticated, service_role;
