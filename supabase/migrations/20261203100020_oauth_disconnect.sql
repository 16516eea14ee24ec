-- OAuth mailboxes: disconnect (issue 17 item 5), for the function oauth-connect
-- (POST /disconnect, the user's token). The mailbox, its mail and its Vault secret go at
-- once; the function then revokes the grant at the provider with the refresh token this
-- returns (RFC 7009, where the provider has an endpoint: Google does, Microsoft does not),
-- holding it in memory only. Deleting first means a failed revocation never leaves the
-- token stored; the grant then stays at the provider until its user revokes it there.
-- public.remove_mailbox deletes the same but cannot revoke (the database holds no client
-- secret).

create function auto_sync.take_oauth_mailbox(p_user_id uuid, p_mailbox_id uuid)
returns table (provider text, refresh_token text)
language plpgsql volatile security definer set search_path = ''
as $$
begin
  return query
    select m.oauth_provider, auto_sync.mailbox_credential(m.id)
      from public.mailboxes m
     where m.id = p_mailbox_id and m.user_id = p_user_id and m.oauth_provider is not null
       for update;
  if found then
    delete from public.mailboxes where id = p_mailbox_id;
  end if;
end
$$;
comment on function auto_sync.take_oauth_mailbox(uuid, uuid) is
  'oauth-connect/disconnect: delete the user''s own connected mailbox (its mail and Vault secret with it) and return its provider and refresh token, for revocation; no row for another user''s or a password mailbox.';

revoke execute on function auto_sync.take_oauth_mailbox(uuid, uuid) from public, anon, authenticated, service_role;
