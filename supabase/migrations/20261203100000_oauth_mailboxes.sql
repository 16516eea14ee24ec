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
--                                         (both columns in ..._mail_import_tables.sql;
--                                         get_mailbox_states in ..._user_status_api.sql
--                                         shows the state)
--   auto_sync.store_rotated_refresh_token(mailbox, presented_sha256, new_token)
--       the importer keeps a rotated refresh token: compare-and-swap on the stored
--       token's hash, so concurrent or crashed runs never overwrite a newer token
--   auto_sync.mark_reconnect_needed(mailbox, presented_sha256, error)
--       the importer records a refused grant, only if the refused token is still the
--       stored one (a reconnect in the meantime is not undone)
-- All for the importer, which connects as postgres: not even service_role may call them.

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
  if auto_sync.credential_problem(p_new_token) is not null then
    raise exception 'Cannot store refresh token: it %', auto_sync.credential_problem(p_new_token)
      using errcode = '22023';
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

revoke execute on function auto_sync.locked_credential_sha256(uuid) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.store_rotated_refresh_token(uuid, text, text) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.mark_reconnect_needed(uuid, text, text) from public, anon, authenticated, service_role;
