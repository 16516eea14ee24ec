-- Mail import: what a signed-in user may do with their own mailboxes (public, callable
-- over the Data API; each acts for auth.uid() only):
--   public.add_mailbox(...)     the credential goes straight into Vault; at most 10 per user
--   public.update_mailbox(...)  null keeps a field; clears a pause. A new server, port,
--                               TLS mode, username or sign-in kind needs the credential
--                               again, so a stolen session cannot send it elsewhere
--   public.remove_mailbox(id)   the mailbox, its mail and its Vault secret
-- Each is a SECURITY INVOKER wrapper of the SECURITY DEFINER function of the same name
-- in the private schema auto_sync_user_api (see ..._auto_sync_tables.sql).
-- Reading is plain SELECT on public.mailboxes / public.emails (RLS: own rows).
-- Refusals are generic ('Cannot add mailbox: invalid settings'), never a constraint
-- name or the failing row; the SQLSTATE says which kind.

create function auto_sync_user_api.add_mailbox(
  p_host text,
  p_port integer,
  p_username text,
  p_credential text,
  p_tls_mode text,
  p_auth_kind text,
  p_folders text[],
  p_label text
) returns uuid
language plpgsql volatile security definer set search_path = ''
as $$
declare
  c_max_mailboxes constant integer := 10;
  v_user_id uuid := auto_sync.user_api_caller('add mailbox');  -- signed in, not anonymous
  v_mailbox_id uuid;
begin
  if auto_sync.credential_problem(p_credential) is not null then
    raise exception 'Cannot add mailbox: the password or token %', auto_sync.credential_problem(p_credential)
      using errcode = '22023';
  end if;
  -- One user's concurrent calls queue here, so the cap holds.
  perform pg_advisory_xact_lock(hashtextextended('auto_sync.mailboxes:' || v_user_id::text, 0));
  if (select count(*) from public.mailboxes m where m.user_id = v_user_id) >= c_max_mailboxes then
    raise exception 'Cannot add mailbox: at most % mailboxes per user', c_max_mailboxes using errcode = '54000';
  end if;
  begin
    insert into public.mailboxes (user_id, host, port, username, tls_mode, auth_kind, folders, label)
    values (v_user_id, p_host, p_port, p_username, p_tls_mode, p_auth_kind, p_folders, p_label)
    returning id into v_mailbox_id;
  exception when check_violation or not_null_violation then
    raise exception 'Cannot add mailbox: invalid settings'
      using errcode = sqlstate,
            hint = 'Host name, port 1-65535, username (1-320 characters), TLS mode tls | starttls | plain, '
                   'sign-in kind password | oauth2, 1-50 folders, label up to 100 characters; no control characters.';
  end;
  insert into auto_sync.mailbox_credentials (mailbox_id, secret_id)
  values (v_mailbox_id, vault.create_secret(p_credential, 'mailbox:' || v_mailbox_id, 'IMAP credential'));
  return v_mailbox_id;
end
$$;
comment on function auto_sync_user_api.add_mailbox(text, integer, text, text, text, text, text[], text) is
  'Behind public.add_mailbox: add an IMAP mailbox for the signed-in user (at most 10); the credential goes into Vault.';

create function auto_sync_user_api.update_mailbox(
  p_mailbox_id uuid,
  p_host text,
  p_port integer,
  p_username text,
  p_credential text,
  p_tls_mode text,
  p_folders text[],
  p_enabled boolean,
  p_label text,
  p_auth_kind text
) returns boolean
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_old public.mailboxes;
  v_secret_id uuid;
begin
  perform auto_sync.user_api_caller('update mailbox');  -- signed in, not anonymous
  if p_credential is not null and auto_sync.credential_problem(p_credential) is not null then
    raise exception 'Cannot update mailbox: the password or token %', auto_sync.credential_problem(p_credential)
      using errcode = '22023';
  end if;
  select * into v_old from public.mailboxes where id = p_mailbox_id and user_id = auth.uid() for update;
  if not found then
    return false;
  end if;
  begin
    update public.mailboxes
       set host = coalesce(p_host, host),
           port = coalesce(p_port, port),
           username = coalesce(p_username, username),
           tls_mode = coalesce(p_tls_mode, tls_mode),
           auth_kind = coalesce(p_auth_kind, auth_kind),
           folders = coalesce(p_folders, folders),
           enabled = coalesce(p_enabled, enabled),
           label = coalesce(p_label, label),
           -- new settings or a new credential: give imports another chance
           paused_reason = null,
           consecutive_auth_failures = 0,
           updated_at = now()
     where id = p_mailbox_id;
  exception when check_violation then
    raise exception 'Cannot update mailbox: invalid settings' using errcode = sqlstate;
  end;
  -- Where the credential goes, and how it is presented, changes only with the
  -- credential given again: else a stolen session could redirect the stored password.
  if p_credential is null
     and (coalesce(p_host, v_old.host) is distinct from v_old.host
          or coalesce(p_port, v_old.port) is distinct from v_old.port
          or coalesce(p_tls_mode, v_old.tls_mode) is distinct from v_old.tls_mode
          or coalesce(p_username, v_old.username) is distinct from v_old.username
          or coalesce(p_auth_kind, v_old.auth_kind) is distinct from v_old.auth_kind) then
    raise exception 'Cannot update mailbox: a new host, port, TLS mode, username or sign-in kind needs the password or token again'
      using errcode = '22023';
  end if;
  if p_credential is not null then
    select secret_id into v_secret_id from auto_sync.mailbox_credentials where mailbox_id = p_mailbox_id;
    perform vault.update_secret(v_secret_id, p_credential);
  end if;
  return true;
end
$$;
comment on function auto_sync_user_api.update_mailbox(uuid, text, integer, text, text, text, text[], boolean, text, text) is
  'Behind public.update_mailbox: change the signed-in user''s own mailbox (null keeps a field); connection changes need the credential again.';

create function auto_sync_user_api.remove_mailbox(p_mailbox_id uuid) returns boolean
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
comment on function auto_sync_user_api.remove_mailbox(uuid) is
  'Behind public.remove_mailbox: remove the signed-in user''s own mailbox, its mail and its Vault credential.';

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
language sql volatile security invoker set search_path = ''
as $$
  select auto_sync_user_api.add_mailbox(p_host, p_port, p_username, p_credential, p_tls_mode,
                                        p_auth_kind, p_folders, p_label)
$$;
comment on function public.add_mailbox(text, integer, text, text, text, text, text[], text) is
  'Signed-in user: add an IMAP mailbox (at most 10). The credential goes straight into Vault; it can never be read back through the API.';

create function public.update_mailbox(
  p_mailbox_id uuid,
  p_host text default null,
  p_port integer default null,
  p_username text default null,
  p_credential text default null,
  p_tls_mode text default null,
  p_folders text[] default null,
  p_enabled boolean default null,
  p_label text default null,
  p_auth_kind text default null
) returns boolean
language sql volatile security invoker set search_path = ''
as $$
  select auto_sync_user_api.update_mailbox(p_mailbox_id, p_host, p_port, p_username, p_credential,
                                           p_tls_mode, p_folders, p_enabled, p_label, p_auth_kind)
$$;
comment on function public.update_mailbox(uuid, text, integer, text, text, text, text[], boolean, text, text) is
  'Signed-in user: change your own mailbox (null keeps a field). A new host, port, TLS mode, username or sign-in kind needs p_credential again. Clears a pause.';

create function public.remove_mailbox(p_mailbox_id uuid) returns boolean
language sql volatile security invoker set search_path = ''
as $$ select auto_sync_user_api.remove_mailbox(p_mailbox_id) $$;
comment on function public.remove_mailbox(uuid) is
  'Signed-in user: remove your own mailbox, its imported mail and its Vault credential.';

revoke execute on function auto_sync_user_api.add_mailbox(text, integer, text, text, text, text, text[], text) from public, anon;
revoke execute on function auto_sync_user_api.update_mailbox(uuid, text, integer, text, text, text, text[], boolean, text, text) from public, anon;
revoke execute on function auto_sync_user_api.remove_mailbox(uuid) from public, anon;
grant execute on function auto_sync_user_api.add_mailbox(text, integer, text, text, text, text, text[], text) to authenticated, service_role;
grant execute on function auto_sync_user_api.update_mailbox(uuid, text, integer, text, text, text, text[], boolean, text, text) to authenticated, service_role;
grant execute on function auto_sync_user_api.remove_mailbox(uuid) to authenticated, service_role;
revoke execute on function public.add_mailbox(text, integer, text, text, text, text, text[], text) from public, anon;
revoke execute on function public.update_mailbox(uuid, text, integer, text, text, text, text[], boolean, text, text) from public, anon;
revoke execute on function public.remove_mailbox(uuid) from public, anon;
grant execute on function public.add_mailbox(text, integer, text, text, text, text, text[], text) to authenticated;
grant execute on function public.update_mailbox(uuid, text, integer, text, text, text, text[], boolean, text, text) to authenticated;
grant execute on function public.remove_mailbox(uuid) to authenticated;
