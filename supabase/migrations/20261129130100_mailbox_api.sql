-- Mail import: what a signed-in user may do with their own mailboxes (public, callable
-- over the Data API; each checks auth.uid()):
--   public.add_mailbox(...)     the credential goes straight into Vault
--   public.update_mailbox(...)  null keeps a field; clears a pause
--   public.remove_mailbox(id)   the mailbox, its mail and its Vault secret
-- Reading is plain SELECT on public.mailboxes / public.emails (RLS: own rows).

create function public.add_mailbox(
  p_host text,
  p_port integer,
  p_username text,
  p_credential text,
  p_tls_mode text default 'tls',
  p_auth_kind text default 'password',
  p_folders text[] default '{INBOX}',
  p_label text default null
) returns uuid
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_user_id uuid := auth.uid();
  v_mailbox_id uuid;
begin
  if v_user_id is null then
    raise exception 'Cannot add mailbox: not signed in' using errcode = '42501';
  end if;
  if p_credential is null or length(p_credential) = 0 or length(p_credential) > 8192 then
    raise exception 'Cannot add mailbox: the password or token must be 1 to 8192 characters' using errcode = '22023';
  end if;
  insert into public.mailboxes (user_id, host, port, username, tls_mode, auth_kind, folders, label)
  values (v_user_id, p_host, p_port, p_username, p_tls_mode, p_auth_kind, p_folders, p_label)
  returning id into v_mailbox_id;
  insert into auto_sync.mailbox_credentials (mailbox_id, secret_id)
  values (v_mailbox_id, vault.create_secret(p_credential, 'mailbox:' || v_mailbox_id, 'IMAP credential'));
  return v_mailbox_id;
end
$$;
comment on function public.add_mailbox(text, integer, text, text, text, text, text[], text) is
  'Signed-in user: add an IMAP mailbox. The credential goes straight into Vault; it can never be read back through the API.';

create function public.update_mailbox(
  p_mailbox_id uuid,
  p_host text default null,
  p_port integer default null,
  p_username text default null,
  p_credential text default null,
  p_tls_mode text default null,
  p_folders text[] default null,
  p_enabled boolean default null,
  p_label text default null
) returns boolean
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_secret_id uuid;
begin
  if auth.uid() is null then
    raise exception 'Cannot update mailbox: not signed in' using errcode = '42501';
  end if;
  if p_credential is not null and (length(p_credential) = 0 or length(p_credential) > 8192) then
    raise exception 'Cannot update mailbox: the password or token must be 1 to 8192 characters' using errcode = '22023';
  end if;
  update public.mailboxes
     set host = coalesce(p_host, host),
         port = coalesce(p_port, port),
         username = coalesce(p_username, username),
         tls_mode = coalesce(p_tls_mode, tls_mode),
         folders = coalesce(p_folders, folders),
         enabled = coalesce(p_enabled, enabled),
         label = coalesce(p_label, label),
         -- new settings or a new credential: give imports another chance
         paused_reason = null,
         consecutive_auth_failures = 0,
         updated_at = now()
   where id = p_mailbox_id and user_id = auth.uid();
  if not found then
    return false;
  end if;
  if p_credential is not null then
    select secret_id into v_secret_id from auto_sync.mailbox_credentials where mailbox_id = p_mailbox_id;
    perform vault.update_secret(v_secret_id, p_credential);
  end if;
  return true;
end
$$;
comment on function public.update_mailbox(uuid, text, integer, text, text, text, text[], boolean, text) is
  'Signed-in user: change your own mailbox (null keeps a field). Clears a pause.';

create function public.remove_mailbox(p_mailbox_id uuid) returns boolean
language plpgsql volatile security definer set search_path = ''
as $$
begin
  if auth.uid() is null then
    raise exception 'Cannot remove mailbox: not signed in' using errcode = '42501';
  end if;
  delete from public.mailboxes where id = p_mailbox_id and user_id = auth.uid();
  return found;
end
$$;
comment on function public.remove_mailbox(uuid) is
  'Signed-in user: remove your own mailbox, its imported mail and its Vault credential.';

revoke execute on function public.add_mailbox(text, integer, text, text, text, text, text[], text) from public, anon;
revoke execute on function public.update_mailbox(uuid, text, integer, text, text, text, text[], boolean, text) from public, anon;
revoke execute on function public.remove_mailbox(uuid) from public, anon;
grant execute on function public.add_mailbox(text, integer, text, text, text, text, text[], text) to authenticated;
grant execute on function public.update_mailbox(uuid, text, integer, text, text, text, text[], boolean, text) to authenticated;
grant execute on function public.remove_mailbox(uuid) to authenticated;
