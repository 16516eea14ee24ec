-- OAuth mailboxes (issue 17): a mailbox connected through a provider (Google, Microsoft,
-- the operator's generic one) keeps a REFRESH token in Vault, in the same place a
-- password mailbox keeps its password (auto_sync.mailbox_credentials; the user can never
-- read it back). The importer trades it for an access token at the provider (client id
-- and secret in the function's secrets, never here) and signs in with XOAUTH2 /
-- OAUTHBEARER. A mailbox whose auth_kind is 'oauth2' without a provider keeps the access
-- token the app stored (the older way; the app refreshes it).
--
--   public.mailboxes.oauth_provider       which provider's client redeems the token
--   public.mailboxes.reconnect_needed_at  the provider refused the grant (invalid_grant:
--                                         revoked, expired, reused): the importer skips the
--                                         mailbox until the user connects it again
--   auto_sync.store_rotated_refresh_token(mailbox, presented_sha256, new_token)
--       the importer keeps a rotated refresh token: compare-and-swap on the stored
--       token's hash, so concurrent or crashed runs never overwrite a newer token
--   auto_sync.mark_reconnect_needed(mailbox, presented_sha256, error)
--       the importer records a refused grant, only if the refused token is still the
--       stored one (a reconnect in the meantime is not undone)
--   auto_sync_user_api.get_mailbox_states()  replaced: state 'reconnect_needed' first
--       (the body in 20261129130300_user_status_api.sql is no longer live)
-- All for the importer, which connects as postgres: not even service_role may call them.

alter table public.mailboxes
  add column oauth_provider text
    check (oauth_provider ~ '^[a-z][a-z0-9_-]{0,31}$'),
  add column reconnect_needed_at timestamptz,
  add constraint mailboxes_oauth_provider_needs_oauth2
    check (oauth_provider is null or auth_kind = 'oauth2');
comment on column public.mailboxes.oauth_provider is
  'The provider whose client redeems the stored refresh token (google, microsoft, generic); null: a password, or an access token the app keeps fresh.';
comment on column public.mailboxes.reconnect_needed_at is
  'When the provider refused the grant (revoked, expired, reused): imports skip the mailbox until it is connected again.';

-- The stored credential's hash, under a lock on its row: the one comparison both
-- functions below make. Null when the mailbox has no credential.
create function auto_sync.locked_credential_sha256(p_mailbox_id uuid) returns text
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_secret_id uuid;
begin
  select c.secret_id into v_secret_id
    from auto_sync.mailbox_credentials c where c.mailbox_id = p_mailbox_id for update;
  if not found then
    return null;
  end if;
  return (select pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(s.decrypted_secret, 'UTF8')), 'hex')
            from vault.decrypted_secrets s where s.id = v_secret_id);
end
$$;
comment on function auto_sync.locked_credential_sha256(uuid) is
  'SHA-256 (hex) of the mailbox''s stored credential, its mapping row locked until the transaction ends; null without one.';

create function auto_sync.store_rotated_refresh_token(
  p_mailbox_id uuid, p_presented_sha256 text, p_new_token text
) returns boolean
language plpgsql volatile security definer set search_path = ''
as $$
begin
  if p_new_token is null or length(p_new_token) not between 1 and 8192 then
    raise exception 'Cannot store refresh token: it must be 1 to 8192 characters' using errcode = '22023';
  end if;
  -- Compare and swap: only the token that was presented to the provider may be replaced.
  if auto_sync.locked_credential_sha256(p_mailbox_id) is distinct from p_presented_sha256 then
    return false;
  end if;
  perform vault.update_secret(c.secret_id, p_new_token)
     from auto_sync.mailbox_credentials c where c.mailbox_id = p_mailbox_id;
  return true;
end
$$;
comment on function auto_sync.store_rotated_refresh_token(uuid, text, text) is
  'Importer: replace the mailbox''s refresh token by the rotated one, only if the stored token is still the one presented (SHA-256 hex); false otherwise (a newer one is kept).';

create function auto_sync.mark_reconnect_needed(
  p_mailbox_id uuid, p_presented_sha256 text, p_error text
) returns boolean
language plpgsql volatile security definer set search_path = ''
as $$
begin
  if auto_sync.locked_credential_sha256(p_mailbox_id) is distinct from p_presented_sha256 then
    return false;
  end if;
  update public.mailboxes
     set reconnect_needed_at = now(), last_error = p_error, updated_at = now()
   where id = p_mailbox_id and oauth_provider is not null;
  return found;
end
$$;
comment on function auto_sync.mark_reconnect_needed(uuid, text, text) is
  'Importer: the provider refused the grant of the stored refresh token (SHA-256 hex): the mailbox needs its user to connect again. Not a failed login (no pause counting). False when the stored token changed meanwhile.';

-- A mailbox's state, in the order that matters to its user: what needs them first.
--   reconnect_needed    the provider refused the grant: connect the mailbox again
--   paused              imports stopped on their own (paused_reason): needs the user
--   credential_refused  the last login was refused (below the pause): needs the user
--   disabled            the user turned it off
--   syncing             an import holds it now
--   failing             the last import of it failed (last_error)
--   waiting             never synced yet
--   ok                  synced, no error
create or replace function auto_sync_user_api.get_mailbox_states()
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
comment on function public.get_mailbox_states() is
  'Signed-in user: each of your mailboxes with its state: reconnect_needed (connect it again), paused or credential_refused (update the password or token): needs_user; disabled, syncing, failing, waiting (never synced), ok.';

revoke execute on function auto_sync.locked_credential_sha256(uuid) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.store_rotated_refresh_token(uuid, text, text) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.mark_reconnect_needed(uuid, text, text) from public, anon, authenticated, service_role;
-- create or replace keeps the grants of 20261129130300_user_status_api.sql; restated here.
revoke execute on function auto_sync_user_api.get_mailbox_states() from public, anon;
grant execute on function auto_sync_user_api.get_mailbox_states() to authenticated, service_role;
