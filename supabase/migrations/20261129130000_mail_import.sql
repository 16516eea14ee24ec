-- Mail import, part 1: mailboxes (credentials in Vault), imported emails, and the
-- per-folder sync state the importer commits together with each batch.
--
--   a signed-in user (public, own rows only):
--     public.add_mailbox(...), public.update_mailbox(...), public.remove_mailbox(id)
--     select from public.mailboxes / public.emails (RLS: own rows; never a credential)
--   the importer (service role):
--     auto_sync.import_targets(user), auto_sync.mailbox_credential(mailbox)
--     auto_sync.claim_mailbox / release_mailbox (one import per mailbox at a time)
--     auto_sync.store_batch(...) (messages + folder state, one transaction)
--     auto_sync.reset_folder(...), auto_sync.record_mailbox_outcome(...)

create table public.mailboxes (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  label text check (length(label) <= 100),
  host text not null check (host ~ '^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$'),
  port integer not null check (port between 1 and 65535),
  tls_mode text not null default 'tls' check (tls_mode in ('tls', 'starttls', 'plain')),
  username text not null check (length(username) between 1 and 320),
  auth_kind text not null default 'password' check (auth_kind in ('password', 'oauth2')),
  folders text[] not null default '{INBOX}'
    check (cardinality(folders) between 1 and 50 and array_position(folders, null) is null),
  enabled boolean not null default true,
  paused_reason text,
  consecutive_auth_failures integer not null default 0,
  last_error text,
  last_synced_at timestamptz,
  import_run_id uuid,
  import_lease_until timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index mailboxes_user_idx on public.mailboxes (user_id);
comment on table public.mailboxes is
  'A user''s IMAP mailboxes. The credential is in Vault (auto_sync.mailbox_credentials); no column here holds it.';
comment on column public.mailboxes.paused_reason is 'Set when imports stop on their own (e.g. repeated authentication failures); cleared by update_mailbox.';
comment on column public.mailboxes.import_run_id is 'The run holding the import lease: one import per mailbox at a time.';

-- Which Vault secret holds a mailbox's password or OAuth access token. Private.
create table auto_sync.mailbox_credentials (
  mailbox_id uuid primary key references public.mailboxes (id) on delete cascade,
  secret_id uuid not null
);
comment on table auto_sync.mailbox_credentials is 'Maps a mailbox to its Vault secret. Deleting the row deletes the secret.';

create table public.emails (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  mailbox_id uuid not null references public.mailboxes (id) on delete cascade,
  folder text not null,
  uid_validity bigint not null,
  uid bigint not null,
  message_key text not null,
  message_id text,
  in_reply_to text,
  "references" text[],
  from_address jsonb,
  to_addresses jsonb,
  cc_addresses jsonb,
  subject text,
  sent_at timestamptz,
  internal_date timestamptz,
  flags text[],
  size_bytes bigint,
  body_text text,
  body_truncated boolean not null default false,
  source_truncated boolean not null default false,
  snippet text,
  attachments jsonb not null default '[]',
  parse_error text,
  imported_at timestamptz not null default now(),
  constraint emails_imap_identity unique (mailbox_id, folder, uid_validity, uid),
  constraint emails_message_identity unique (mailbox_id, folder, message_key)
);
create index emails_user_date_idx on public.emails (user_id, internal_date desc);

-- Bodies are the bulk of every insert: lz4 compresses them 2-3x faster than the
-- default pglz (BENCHMARKS.md). Kept optional for servers built without lz4.
do $$
begin
  alter table public.emails alter column body_text set compression lz4;
exception when feature_not_supported or invalid_parameter_value then
  raise notice 'lz4 is not available here: emails.body_text keeps the default compression';
end
$$;
comment on table public.emails is
  'Imported messages. A user reads their own; only the importer writes. One row per message per folder, whatever UIDVALIDITY does.';
comment on column public.emails.message_key is
  'Identity across UIDVALIDITY resets: "mid:" + Message-ID, else "sha256:" + hash of the raw header block.';
comment on column public.emails.source_truncated is 'The message was larger than the per-message byte bound: headers, the text that fit and BODYSTRUCTURE attachment metadata were kept.';

create table auto_sync.folder_state (
  mailbox_id uuid not null references public.mailboxes (id) on delete cascade,
  folder text not null,
  uid_validity bigint not null,
  last_uid bigint not null default 0,
  highest_modseq numeric,
  message_count integer,
  last_checked_at timestamptz,
  resets integer not null default 0,
  last_reset_at timestamptz,
  primary key (mailbox_id, folder)
);
comment on table auto_sync.folder_state is
  'Per mailbox folder: UIDVALIDITY, last imported UID, HIGHESTMODSEQ. Written in the same transaction as the messages it covers.';

alter table public.mailboxes enable row level security;
alter table public.emails enable row level security;
alter table auto_sync.mailbox_credentials enable row level security;
alter table auto_sync.folder_state enable row level security;

create policy "Users can read their own mailboxes" on public.mailboxes
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Users can read their own emails" on public.emails
  for select to authenticated using (user_id = (select auth.uid()));

-- Supabase grants the API roles everything in public: keep reads, take the rest back.
revoke all on public.mailboxes, public.emails from anon, authenticated, public;
revoke all on sequence public.emails_id_seq from anon, authenticated, public;
grant select on public.mailboxes, public.emails to authenticated;
revoke all on auto_sync.mailbox_credentials, auto_sync.folder_state from public, anon, authenticated;
grant select on auto_sync.folder_state to service_role;

-- Deleting a credential row (directly, or by cascade from a mailbox or a user)
-- deletes its Vault secret, so no orphaned password stays behind.
create function auto_sync.delete_mailbox_secret() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  delete from vault.secrets where id = old.secret_id;
  return old;
end
$$;
create trigger delete_mailbox_secret after delete on auto_sync.mailbox_credentials
  for each row execute function auto_sync.delete_mailbox_secret();

-------------------------------------------------------------------------------
-- A signed-in user's own mailboxes.
-------------------------------------------------------------------------------
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

-------------------------------------------------------------------------------
-- The importer (service role).
-------------------------------------------------------------------------------
create function auto_sync.import_targets(p_user_id uuid)
returns setof public.mailboxes
language sql stable security definer set search_path = ''
as $$
  select * from public.mailboxes
   where user_id = p_user_id and enabled
   order by created_at
$$;
comment on function auto_sync.import_targets(uuid) is 'Importer: the user''s enabled mailboxes, paused ones included so a run can say why it did nothing.';

create function auto_sync.mailbox_credential(p_mailbox_id uuid) returns text
language sql stable security definer set search_path = ''
as $$
  select s.decrypted_secret
    from auto_sync.mailbox_credentials c
    join vault.decrypted_secrets s on s.id = c.secret_id
   where c.mailbox_id = p_mailbox_id
$$;
comment on function auto_sync.mailbox_credential(uuid) is 'Importer only: the mailbox''s password or access token from Vault.';

create function auto_sync.claim_mailbox(p_mailbox_id uuid, p_run_id uuid, p_lease interval)
returns boolean
language sql volatile security definer set search_path = ''
as $$
  with claimed as (
    update public.mailboxes
       set import_run_id = p_run_id, import_lease_until = now() + p_lease
     where id = p_mailbox_id
       and (import_run_id is null or import_run_id = p_run_id or import_lease_until < now())
    returning 1
  )
  select exists (select 1 from claimed)
$$;
comment on function auto_sync.claim_mailbox(uuid, uuid, interval) is
  'Importer: take the mailbox''s import lease for a run. False while another run holds an unexpired lease. The lease expires, so a crashed import never blocks forever.';

create function auto_sync.release_mailbox(p_mailbox_id uuid, p_run_id uuid) returns void
language sql volatile security definer set search_path = ''
as $$
  update public.mailboxes set import_run_id = null, import_lease_until = null
   where id = p_mailbox_id and import_run_id = p_run_id
$$;

create function auto_sync.folder_states(p_mailbox_id uuid) returns setof auto_sync.folder_state
language sql stable security definer set search_path = ''
as $$ select * from auto_sync.folder_state where mailbox_id = p_mailbox_id $$;

-- UIDVALIDITY changed: the old UIDs mean nothing now. Start the folder over;
-- store_batch then re-maps the existing rows by message_key instead of duplicating.
create function auto_sync.reset_folder(p_mailbox_id uuid, p_folder text, p_uid_validity bigint)
returns void
language sql volatile security definer set search_path = ''
as $$
  insert into auto_sync.folder_state (mailbox_id, folder, uid_validity, last_uid, resets, last_reset_at)
  values (p_mailbox_id, p_folder, p_uid_validity, 0, 1, now())
  on conflict (mailbox_id, folder) do update
     set uid_validity = excluded.uid_validity, last_uid = 0, highest_modseq = null,
         resets = auto_sync.folder_state.resets + 1, last_reset_at = now()
$$;

-- One batch of parsed messages and the folder state that covers it, atomically.
-- Returns how many rows were inserted, re-mapped after a UIDVALIDITY reset, or
-- skipped as already present.
create function auto_sync.store_batch(
  p_mailbox_id uuid,
  p_folder text,
  p_uid_validity bigint,
  p_messages jsonb,
  p_last_uid bigint,
  p_highest_modseq numeric default null,
  p_message_count integer default null
) returns table (inserted integer, remapped integer, duplicates integer)
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_user_id uuid;
  v_total integer := jsonb_array_length(p_messages);
begin
  select user_id into strict v_user_id from public.mailboxes where id = p_mailbox_id;

  with incoming as (
    select distinct on (m.message_key) m.*
      from jsonb_to_recordset(p_messages) as m (
        uid bigint, message_key text, message_id text, in_reply_to text, "references" text[],
        from_address jsonb, to_addresses jsonb, cc_addresses jsonb, subject text,
        sent_at timestamptz, internal_date timestamptz, flags text[], size_bytes bigint,
        body_text text, body_truncated boolean, source_truncated boolean, snippet text,
        attachments jsonb, parse_error text)
     order by m.message_key, m.uid
  ), written as (
    insert into public.emails as e (
      user_id, mailbox_id, folder, uid_validity, uid, message_key, message_id, in_reply_to,
      "references", from_address, to_addresses, cc_addresses, subject, sent_at, internal_date,
      flags, size_bytes, body_text, body_truncated, source_truncated, snippet, attachments, parse_error)
    select v_user_id, p_mailbox_id, p_folder, p_uid_validity, i.uid, i.message_key, i.message_id,
           i.in_reply_to, i."references", i.from_address, i.to_addresses, i.cc_addresses, i.subject,
           i.sent_at, i.internal_date, i.flags, i.size_bytes, i.body_text,
           coalesce(i.body_truncated, false), coalesce(i.source_truncated, false), i.snippet,
           coalesce(i.attachments, '[]'), i.parse_error
      from incoming i
    on conflict on constraint emails_message_identity do update
       set uid_validity = excluded.uid_validity, uid = excluded.uid, flags = excluded.flags
     where e.uid_validity <> excluded.uid_validity
    returning (xmax = 0) as is_new
  )
  select count(*) filter (where is_new), count(*) filter (where not is_new)
    into inserted, remapped
    from written;
  duplicates := v_total - inserted - remapped;

  insert into auto_sync.folder_state (mailbox_id, folder, uid_validity, last_uid, highest_modseq, message_count, last_checked_at)
  values (p_mailbox_id, p_folder, p_uid_validity, p_last_uid, p_highest_modseq, p_message_count, now())
  on conflict (mailbox_id, folder) do update
     set uid_validity = excluded.uid_validity,
         last_uid = greatest(auto_sync.folder_state.last_uid, excluded.last_uid),
         highest_modseq = coalesce(excluded.highest_modseq, auto_sync.folder_state.highest_modseq),
         message_count = coalesce(excluded.message_count, auto_sync.folder_state.message_count),
         last_checked_at = now();
  return next;
end
$$;
comment on function auto_sync.store_batch(uuid, text, bigint, jsonb, bigint, numeric, integer) is
  'Importer: insert a batch of messages (idempotent by IMAP identity and by message_key) and advance the folder state in the same transaction.';

-- A folder checked with nothing new: remember when, without touching last_uid.
create function auto_sync.touch_folder(
  p_mailbox_id uuid, p_folder text, p_uid_validity bigint, p_highest_modseq numeric, p_message_count integer
) returns void
language sql volatile security definer set search_path = ''
as $$
  insert into auto_sync.folder_state (mailbox_id, folder, uid_validity, highest_modseq, message_count, last_checked_at)
  values (p_mailbox_id, p_folder, p_uid_validity, p_highest_modseq, p_message_count, now())
  on conflict (mailbox_id, folder) do update
     set highest_modseq = coalesce(excluded.highest_modseq, auto_sync.folder_state.highest_modseq),
         message_count = coalesce(excluded.message_count, auto_sync.folder_state.message_count),
         last_checked_at = now()
$$;

-- After each mailbox: its error (or none), and authentication failures counted so
-- that a wrong password pauses the mailbox instead of hammering the server.
create function auto_sync.record_mailbox_outcome(
  p_mailbox_id uuid, p_error text default null, p_auth_failed boolean default false
) returns text
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_failures integer;
  v_paused text;
begin
  update public.mailboxes
     set last_error = p_error,
         last_synced_at = case when p_error is null then now() else last_synced_at end,
         consecutive_auth_failures = case when p_auth_failed then consecutive_auth_failures + 1 else 0 end,
         updated_at = now()
   where id = p_mailbox_id
  returning consecutive_auth_failures into v_failures;
  if v_failures >= 3 then
    v_paused := format('Paused after %s failed logins: update the password or token to resume', v_failures);
    update public.mailboxes set paused_reason = v_paused where id = p_mailbox_id;
  end if;
  return v_paused;
end
$$;
comment on function auto_sync.record_mailbox_outcome(uuid, text, boolean) is
  'Importer: record a mailbox''s last error; the third authentication failure in a row pauses it. Returns the pause reason, if paused.';

revoke execute on function public.add_mailbox(text, integer, text, text, text, text, text[], text) from public, anon;
revoke execute on function public.update_mailbox(uuid, text, integer, text, text, text, text[], boolean, text) from public, anon;
revoke execute on function public.remove_mailbox(uuid) from public, anon;
grant execute on function public.add_mailbox(text, integer, text, text, text, text, text[], text) to authenticated;
grant execute on function public.update_mailbox(uuid, text, integer, text, text, text, text[], boolean, text) to authenticated;
grant execute on function public.remove_mailbox(uuid) to authenticated;

revoke execute on function auto_sync.delete_mailbox_secret() from public, anon, authenticated, service_role;
revoke execute on function auto_sync.import_targets(uuid) from public, anon, authenticated;
revoke execute on function auto_sync.mailbox_credential(uuid) from public, anon, authenticated;
revoke execute on function auto_sync.claim_mailbox(uuid, uuid, interval) from public, anon, authenticated;
revoke execute on function auto_sync.release_mailbox(uuid, uuid) from public, anon, authenticated;
revoke execute on function auto_sync.folder_states(uuid) from public, anon, authenticated;
revoke execute on function auto_sync.reset_folder(uuid, text, bigint) from public, anon, authenticated;
revoke execute on function auto_sync.store_batch(uuid, text, bigint, jsonb, bigint, numeric, integer) from public, anon, authenticated;
revoke execute on function auto_sync.touch_folder(uuid, text, bigint, numeric, integer) from public, anon, authenticated;
revoke execute on function auto_sync.record_mailbox_outcome(uuid, text, boolean) from public, anon, authenticated;
grant execute on function auto_sync.import_targets(uuid) to service_role;
grant execute on function auto_sync.mailbox_credential(uuid) to service_role;
grant execute on function auto_sync.claim_mailbox(uuid, uuid, interval) to service_role;
grant execute on function auto_sync.release_mailbox(uuid, uuid) to service_role;
grant execute on function auto_sync.folder_states(uuid) to service_role;
grant execute on function auto_sync.reset_folder(uuid, text, bigint) to service_role;
grant execute on function auto_sync.store_batch(uuid, text, bigint, jsonb, bigint, numeric, integer) to service_role;
grant execute on function auto_sync.touch_folder(uuid, text, bigint, numeric, integer) to service_role;
grant execute on function auto_sync.record_mailbox_outcome(uuid, text, boolean) to service_role;
